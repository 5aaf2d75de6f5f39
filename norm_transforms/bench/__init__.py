"""``norm-transforms bench``: the library against the peers people use, as a tested tool.

A module per concern, the Torch ones loaded only by ``--backend torch``:

- :mod:`.numpy_suite`: the NumPy suite (``norm-transforms bench``) and its report;
- :mod:`.torch_suite`, :mod:`.torch_peers`, :mod:`.cuda_timing`: the Torch suite
  (``--backend torch``), its contenders, CUDA-event timing;
- :mod:`.report`: tables, ratios, summaries and the Markdown section writer, shared by both;
- :mod:`.machine`: the machine line and versions that open every report;
- :mod:`.chart`: ``--chart``;
- :mod:`._timing`: timing primitives, also run by path in a peer interpreter that lacks this
  package (``--peer-python``), so it imports nothing from here.

Which peer runs which mode is read from the mode's data in :data:`norm_transforms.modes.MODES`:
a new mode is timed (ours and the floor) with "—" for any peer that has no version of it.
"""

from .machine import machine_line, package_version
from .numpy_suite import main
from .report import render_table, write_section

__all__ = ["machine_line", "main", "package_version", "render_table", "write_section"]
