"""Every function a module exports is named after its file: src/store_redis_conn.c exports only
store_redis_conn_*, so a reader finds any function's room from its name (and the other way).
Read off the core library the daemon links, with nm."""
import os
import re
import subprocess
import sys
import unittest

CORE = os.environ.get("CORE_LIB")


class NamesMatchRooms(unittest.TestCase):
    def test_exported_functions_carry_their_file_name(self):
        self.assertTrue(CORE and os.path.exists(CORE), f"no core library at {CORE!r}")
        out = subprocess.run(["nm", "-g", "--defined-only", CORE], capture_output=True, text=True,
                             check=True).stdout
        wrong, seen, module = [], 0, None
        for line in out.splitlines():
            m = re.match(r"^(?:.*src_)?([a-z0-9_]+)\.c\.o:$", line)
            if m:
                module = m.group(1)
                continue
            parts = line.split()
            if module is None or len(parts) != 3 or parts[1] != "T":
                continue
            seen += 1
            name = parts[2]
            if name != module and not name.startswith(module + "_"):
                wrong.append(f"{module}.c: {name}")
        self.assertGreater(seen, 100, "nm listed too few functions: wrong library?")
        self.assertEqual(wrong, [], "functions named after another file")


if __name__ == "__main__":
    sys.exit(unittest.main())
