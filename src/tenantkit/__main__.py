"""``python -m tenantkit``: the same command line as ``tenantkit``."""

from tenantkit._cli import main

main(prog_name="tenantkit")
