"""Import every command module so that each registers itself."""

import importlib
import pkgutil

import kcrash.commands as _pkg

for _info in pkgutil.iter_modules(_pkg.__path__, _pkg.__name__ + "."):
    if _info.name.rsplit(".", 1)[1] not in ("all", "registry"):
        importlib.import_module(_info.name)
