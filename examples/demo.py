"""tenantkit's demo: create and migrate an embedded SQLite database, then show what was created.

Run it with ``make demo`` (or ``python examples/demo.py [path-to-sqlite-file]``).
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import sqlalchemy as sa

import tenantkit


def main(path: Path) -> None:
    engine = sa.create_engine(f"sqlite:///{path}")
    tenantkit.upgrade(engine)
    print(f"database   {path}")
    print(f"revision   {tenantkit.current_revision(engine)} (head {tenantkit.head_revision()})")
    inspector = sa.inspect(engine)
    for table in tenantkit.metadata.sorted_tables:
        columns = ", ".join(column["name"] for column in inspector.get_columns(table.name))
        print(f"table      {table.name}: {columns}")
        for index in inspector.get_indexes(table.name):
            unique = "unique " if index["unique"] else ""
            print(f"  {unique}index {index['name']} on {', '.join(map(str, index['column_names']))}")
    engine.dispose()


if __name__ == "__main__":
    if len(sys.argv) > 1:
        main(Path(sys.argv[1]))
    else:
        with tempfile.TemporaryDirectory() as directory:
            main(Path(directory) / "tenantkit-demo.sqlite3")
