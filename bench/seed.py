"""bench/seed.py - what bench/run needs from a token set besides the tokens.

  seed.py claims TOKENS                 prints "jti sub iat exp" for each token (lookup requests)
  seed.py forge TOKENS                  prints each token with one bit of its signature flipped:
                                        well-formed, never valid (an attacker's tokens)
  seed.py revoke PORT ADMIN_KEY_FILE TOKENS
                                        revokes every tenth token (lines 1, 11, 21, ...) with
                                        POST /v1/admin/revoke on 127.0.0.1:PORT, over 4 keep-alive
                                        connections; exits 1 unless every answer is 200

Python standard library only."""
import base64
import http.client
import json
import sys
import threading

CONNECTIONS = 4


def claims(token):
    payload = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))


def read_tokens(path):
    with open(path, encoding="ascii") as f:
        return [line.strip() for line in f if line.strip()]


def cmd_claims(path):
    out = sys.stdout
    for token in read_tokens(path):
        c = claims(token)
        out.write(f"{c['jti']} {c.get('sub', '-')} {c['iat']} {c['exp']}\n")


def cmd_forge(path):
    out = sys.stdout
    for token in read_tokens(path):
        head, payload, sig = token.split(".")
        raw = bytearray(base64.urlsafe_b64decode(sig + "=" * (-len(sig) % 4)))
        raw[len(raw) // 2] ^= 0x01
        forged = base64.urlsafe_b64encode(bytes(raw)).rstrip(b"=").decode()
        out.write(f"{head}.{payload}.{forged}\n")


def cmd_revoke(port, admin_key_file, path):
    with open(admin_key_file, encoding="ascii") as f:
        admin_key = f.readline().strip()
    chosen = read_tokens(path)[::10]
    failures = []

    def worker(part):
        conn = http.client.HTTPConnection("127.0.0.1", int(port), timeout=10)
        headers = {"Authorization": f"Bearer {admin_key}", "Content-Type": "application/json"}
        try:
            for token in part:
                c = claims(token)
                conn.request("POST", "/v1/admin/revoke",
                             json.dumps({"jti": c["jti"], "exp": c["exp"]}), headers)
                resp = conn.getresponse()
                body = resp.read()
                if resp.status != 200:
                    failures.append(f"{resp.status} {body[:200]!r}")
                    return
        except (OSError, http.client.HTTPException) as e:
            failures.append(repr(e))
        finally:
            conn.close()

    threads = [threading.Thread(target=worker, args=(chosen[i::CONNECTIONS],))
               for i in range(CONNECTIONS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if failures:
        sys.exit(f"seed.py: revoking a tenth of {path} failed: {failures[0]}")
    print(len(chosen))


def main(argv):
    if len(argv) == 3 and argv[1] == "claims":
        cmd_claims(argv[2])
    elif len(argv) == 3 and argv[1] == "forge":
        cmd_forge(argv[2])
    elif len(argv) == 5 and argv[1] == "revoke":
        cmd_revoke(argv[2], argv[3], argv[4])
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main(sys.argv)
