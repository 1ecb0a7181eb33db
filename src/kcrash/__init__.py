"""kcrash: tell an operator why a Linux kernel crashed.

Layers (data flows one way, each uses only the ones before it):
model/sys_rows -> target -> facts -> diagnosis -> report -> pipeline ->
entry -> commands/tools -> cli (docs/DEVELOPING.md has the module map).
"""

__version__ = "0.1.0"
