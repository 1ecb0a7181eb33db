"""kcrash: tell an operator why a Linux kernel crashed.

Layers (data flows one way, each uses only the ones before it):
target -> facts -> diagnosis -> report -> commands/cli.
"""

__version__ = "0.1.0"
