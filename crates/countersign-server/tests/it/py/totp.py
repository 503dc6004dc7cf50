"""TOTP codes computed by pyotp, apart from the server's own implementation.

stdin: the first line is an otpauth:// URI (parsed as an authenticator app would) or a
base32 secret; each further line a Unix time. stdout: one code per time.
"""

import sys

import pyotp

lines = sys.stdin.read().split()
source, times = lines[0], lines[1:]
totp = pyotp.parse_uri(source) if source.startswith("otpauth://") else pyotp.TOTP(source)
for t in times:
    print(totp.at(int(t)))
