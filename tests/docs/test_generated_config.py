"""What is generated from the settings table matches the binary: the README's configuration
table (`revokd --config-markdown`), deploy/systemd/revokd.env.example (`revokd --config-env`
with the values the file sets), and `revokd --help`."""
import os
import re
import subprocess
import sys
import unittest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
REVOKD = os.environ.get("REVOKD_BIN", os.path.join(ROOT, "build", "revokd"))


class ReadmeConfig(unittest.TestCase):
    def test_table_matches_binary(self):
        with open(os.path.join(ROOT, "README.md"), encoding="utf-8") as f:
            readme = f.read()
        m = re.search(r"<!-- config:begin -->\n(.*?)<!-- config:end -->", readme, re.S)
        self.assertIsNotNone(m, "README lacks the config markers")
        generated = subprocess.run([REVOKD, "--config-markdown"], capture_output=True, text=True,
                                   check=True).stdout
        self.assertEqual(m.group(1), generated,
                         "README table is stale: regenerate with revokd --config-markdown")

    def test_env_example_matches_binary(self):
        with open(os.path.join(ROOT, "deploy", "systemd", "revokd.env.example"), encoding="utf-8") as f:
            example = f.read()
        values = re.findall(r"^REVOKD_[A-Z_]+=.*$", example, re.M)
        self.assertGreater(len(values), 5)
        generated = subprocess.run([REVOKD, "--config-env", *values], capture_output=True, text=True,
                                   check=True).stdout
        self.assertTrue(example.endswith("\n\n" + generated),
                        "revokd.env.example is stale: regenerate its end with revokd --config-env and "
                        "the REVOKD_X=value lines it sets")

    def test_help_lists_every_setting(self):
        generated = subprocess.run([REVOKD, "--config-markdown"], capture_output=True, text=True,
                                   check=True).stdout
        names = re.findall(r"`(REVOKD_[A-Z_]+)`", generated)
        self.assertGreater(len(names), 20)
        helptext = subprocess.run([REVOKD, "--help"], capture_output=True, text=True,
                                  check=True).stdout
        for name in names:
            self.assertIn(name, helptext)


if __name__ == "__main__":
    sys.exit(unittest.main())
