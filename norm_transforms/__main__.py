"""``python -m norm_transforms``: the ``norm-transforms`` command, for when the script is not on
PATH (a virtualenv that is not activated, ``pip install --user``) or to pick the interpreter."""

from .cli import main

if __name__ == "__main__":
    raise SystemExit(main())
