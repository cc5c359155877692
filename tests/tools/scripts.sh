#!/bin/sh
# tests/tools/scripts.sh: kv-cli as scripts use it: .read, errors that name
# file:line, '#' comments after a command, .load's checks, and output that
# programs read: CSV with header rows (errors on stderr) and JSON, with
# sessions and blocking as fields and events (parsed with python3's csv and
# json modules); a full stdout is an error; DEADLOCKS of a range-lock wait.
. "${top_srcdir:?run me through make check}/tests/tools/lib.sh"
plan 19

have_python=0
command -v python3 >/dev/null 2>&1 && have_python=1
skip() { tap_n=$((tap_n + 1)); echo "ok $tap_n # SKIP $1"; }

# ---- .read and file:line ------------------------------------------------------------------
printf 'PUT a 1\n.read inner.kv\nGET b\nFROB\n' >"$tmp/outer.kv"
printf '# inner\nPUT b 2\n\nCOMMIT\n.read missing.kv\n' >"$tmp/inner.kv"
run_cli -f outer.kv
[ "$st" -eq 1 ] && [ "$out" = "OK
OK
(error) INVALID: inner.kv:4: no transaction is open in this session
(error) IO: inner.kv:5: cannot open missing.kv: No such file or directory
2
(error) SYNTAX: outer.kv:4: unknown command 'FROB' (HELP lists the commands)" ]
ok $? ".read runs a file in place; errors name the file and line, nested too"

run_cli -c '.read inner.kv; GET b' -c 'GET nothing; FROB'
[ "$st" -eq 1 ] && printf '%s\n' "$out" | grep -qx '(error) INVALID: inner.kv:4: no transaction is open in this session' &&
    printf '%s\n' "$out" | grep -qx "(error) SYNTAX: unknown command 'FROB' (HELP lists the commands)"
ok $? "-c commands have no file:line; a .read from -c does"

printf 'PUT x 1\n.read self.kv\n' >"$tmp/self.kv"
run_cli -f self.kv -c 'COUNT'
[ "$st" -eq 1 ] && printf '%s\n' "$out" | grep -q '^(error) INVALID: self.kv:2: .read self.kv: nested more than 16 deep' &&
    [ "$(printf '%s\n' "$out" | tail -n 1)" = 1 ]
ok $? "a file that reads itself stops at 16 levels"

printf 'PUT a 1\n.quit\nPUT b 2\n' >"$tmp/quit.kv"
run_cli -c '.read quit.kv' -c 'PUT c 3'
[ "$st" -eq 0 ] && [ "$out" = OK ]
ok $? ".quit inside .read leaves kv-cli"

run_cli --format json -f inner.kv
printf '%s\n' "$out" | grep -qx '{"error":"INVALID","message":"no transaction is open in this session","file":"inner.kv","line":4}'
ok $? "JSON errors carry file and line as fields"

# ---- '#' after a command ----------------------------------------------------------------------
run_cli -c 'PUT k v # the comment is not a word; GET k' -c 'PUT "#q" "#v"; SCAN # all' -c 'GET "#q"'
[ "$out" = 'OK
OK
"#q" "#v"
k v
"#v"' ]
ok $? "'#' starting a word comments out the rest of the line; quoted '#' is data"

# ---- .load: an empty key and a key given twice --------------------------------------------------
printf 'PUT a 1\nPUT "" 2\n' >"$tmp/empty.kv"
printf 'PUT a 1\nPUT b 2\n# again\nPUT a 3\n' >"$tmp/twice.kv"
run_cli -c '.load empty.kv' -c '.load twice.kv' -c 'COUNT'
[ "$st" -eq 1 ] && [ "$out" = '(error) SYNTAX: empty.kv:2: an empty key (a key is 1 to 65535 bytes)
(error) SYNTAX: twice.kv:4: key a given twice (first on line 1)
0' ]
ok $? ".load names the line of an empty key and of a key given twice"

# ---- CSV: header rows, errors on stderr --------------------------------------------------------
(cd "$tmp" && "$KVCLI" --format csv -c 'PUT a "x,y"; GET a; GET zz; SCAN; COUNT; COMMIT; .load empty.kv') \
    >"$tmp/csv.out" 2>"$tmp/csv.err"
st=$?
[ "$st" -eq 1 ] && [ "$(cat "$tmp/csv.out")" = 'status
OK
key,value
a,"x,y"
key,value
zz,
key,value
a,"x,y"
count
1' ] && [ "$(cat "$tmp/csv.err")" = '(error) INVALID: no transaction is open in this session
(error) SYNTAX: empty.kv:2: an empty key (a key is 1 to 65535 bytes)' ]
st=$?
[ $st -eq 0 ] || sed 's/^/# /' "$tmp/csv.out" "$tmp/csv.err"
ok $st "CSV: a header row per result, errors on stderr"

# ---- sessions and blocking in JSON and CSV, read back by python3 -------------------------------
cat >"$tmp/sessions.kv" <<'EOF'
@T1 BEGIN READ COMMITTED PESSIMISTIC
@T2 BEGIN READ COMMITTED PESSIMISTIC
@T1 PUT k 1
@T2 PUT k 2
@T2 GET k
@T1 COMMIT
@T2 COMMIT
@T3 SCAN
@T3 COUNT
@T3 STATS
@T3 LOCKS
@T3 DEADLOCKS
@T3 COMMIT
EOF
for fmt in json csv; do
    (cd "$tmp" && "$KVCLI" --wait 1000 --format $fmt -f sessions.kv) >"$tmp/s.$fmt" 2>"$tmp/s.$fmt.err"
    st=$?
    if [ $have_python -eq 0 ]; then
        skip "python3 is not installed"
        continue
    fi
    python3 - "$fmt" "$tmp/s.$fmt" "$tmp/s.$fmt.err" <<'EOF'
import csv, json, sys
fmt, path, errpath = sys.argv[1:]
events, results, problems = [], [], []
if fmt == "json":
    for n, line in enumerate(open(path), 1):
        v = json.loads(line)          # every line is one JSON value
        if not isinstance(v, dict) or v.get("session") not in ("T1", "T2", "T3"):
            problems.append("line %d has no session: %s" % (n, line))
            continue
        (events if "event" in v else results).append(v)
    errs = [r for r in results if "error" in r]
    scan = [r for r in results if "rows" in r and r["session"] == "T3"]
    ok = (scan and scan[0]["rows"] == [{"key": "k", "value": "2"}] and
          {"session": "T2", "value": "2", "key": "k"} in results and
          len(errs) == 1 and errs[0]["error"] == "INVALID" and errs[0]["line"] == 13)
else:
    header = None
    for row in csv.reader(open(path, newline="")):
        if row[0] == "session":       # a header row starts each result
            header = row
            continue
        if header is None or len(row) != len(header) or row[0] not in ("T1", "T2", "T3"):
            problems.append("row %r under header %r" % (row, header))
            continue
        r = dict(zip(header, row))
        (events if header == ["session", "event"] else results).append(r)
    scan = [r for r in results if r["session"] == "T3" and r.get("key") == "k"]
    err = open(errpath).read()
    ok = (scan and scan[0]["value"] == "2" and
          {"session": "T2", "key": "k", "value": "2"} in results and
          err.startswith("[T3] (error) INVALID: sessions.kv:13: ") and "(error)" not in open(path).read())
want = [{"session": "T2", "event": "blocked"}, {"session": "T2", "event": "queued"}]
if events != want:
    problems.append("events %r, want %r" % (events, want))
if not ok:
    problems.append("results %r" % results)
for p in problems:
    print("# " + p)
sys.exit(1 if problems else 0)
EOF
    ok $((st != 1 || $? != 0)) "$fmt: every line is $fmt with its session; blocked and queued are events"
done

# ---- a stdout that cannot be written ---------------------------------------------------------
if [ -w /dev/full ]; then
    "$KVCLI" -c 'PUT a 1; SCAN' >/dev/full 2>"$tmp/full.err"
    st=$?
    [ "$st" -eq 1 ] && grep -q 'cannot write to standard output: No space left on device' "$tmp/full.err"
    ok $? "a full stdout: says so and exits 1"
else
    skip "no /dev/full"
fi

# ---- DEADLOCKS when a transaction waited for a range lock ------------------------------------
# Each SCAN locks from its start key to the end of the keyspace (its batch
# reached the end), so each waits for the other's X lock inside that range.
dl='@T1 BEGIN SERIALIZABLE PESSIMISTIC; @T2 BEGIN SERIALIZABLE PESSIMISTIC; @T1 PUT b 1'
dl="$dl; @T2 PUT y 1; @T1 SCAN x z; @T2 SCAN a c; @T1 COMMIT; @T2 ROLLBACK"
run_cli --wait 1000 -c "$dl" -c '@T3 DEADLOCKS'
printf '%s\n' "$out" | grep -qx '\[T3\] deadlock 1: T2 (txn 2) waited for RANGE \["a", +inf), T1 (txn 1) waited for RANGE \["x", +inf); victim T2 (txn 2)'
st=$?
[ $st -eq 0 ] || printf '%s\n' "$out" | sed 's/^/# /'
ok $st "DEADLOCKS shows a range-lock wait as LOCKS shows the range, not as a wait for \"\""
run_cli --wait 1000 -c "$dl" -c '.format json; DEADLOCKS'
printf '%s\n' "$out" | tail -n 1 | grep -q '"lock":"range","lo":"a","lo_truncated":false,"hi":null' &&
    ! printf '%s\n' "$out" | grep -q '"key":""'
ok $? "DEADLOCKS in JSON: \"lock\":\"range\" with its lo and hi, as LOCKS"
run_cli --wait 1000 -c "$dl" -c '.format csv; DEADLOCKS'
[ "$(printf '%s\n' "$out" | tail -n 3)" = 'seq,txn,txn_session,lock,key,hi,truncated,victim
1,2,T2,range,a,,0,1
1,1,T1,range,x,,0,0' ]
ok $? "DEADLOCKS in CSV: documented columns, a range's bounds in key and hi"

# ---- interactive: exit status 0, and Ctrl-D while a session is blocked ------------------------
if [ $have_python -eq 1 ]; then
    python3 - "$KVCLI" >"$tmp/pty.out" 2>&1 <<'EOF'
import os, pty, select, signal, sys, time
# Each line is typed after the prompt is back: libedit reads a raw terminal
# only while it edits a line (a ^D typed earlier would be the kernel's EOF).
def session(lines):
    pid, fd = pty.fork()
    if pid == 0:
        os.environ["TERM"] = "dumb"
        os.execv(sys.argv[1], [sys.argv[1]])
    out = b""
    def wait_for(done, limit=30):      # a deadline to fail, not to synchronise
        nonlocal out
        end = time.time() + limit
        while not done() and time.time() < end:
            if select.select([fd], [], [], 0.5)[0]:
                try:
                    out += os.read(fd, 4096)
                except OSError:
                    return True        # it exited
        return done()
    seen = 0                           # prompts before the last line typed
    for line, expect in lines:
        if not wait_for(lambda: out.count(b"]> ") > seen):
            print("# no prompt in %r" % out)
        seen = out.count(b"]> ")
        os.write(fd, line)
        if expect and not wait_for(lambda: expect in out):
            print("# never saw %r in %r" % (expect, out))
    # Read everything until it exits.  The Ctrl-D is typed as soon as the
    # prompt shows: kv-cli must already be reading a raw terminal then (a
    # Ctrl-D in cooked mode would be the kernel's end-of-file, which turns
    # into a NUL byte when libedit switches to raw mode: tools/cli-input.c).
    wait_for(lambda: False)
    end = time.time() + 30
    while time.time() < end:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return os.WEXITSTATUS(status), out.decode(errors="replace")
        time.sleep(0.1)
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
    return -1, out.decode(errors="replace")
st, out = session([(b"FROB\n", b"(error) SYNTAX"), (b"\x04", None)])
print("# status %d" % st)
bad = st != 0
st, out = session([(b"@T1 BEGIN PESSIMISTIC; @T2 BEGIN PESSIMISTIC\n", b"[T2] OK"),
                   (b"@T1 PUT k 1\n", b"[T1] OK"), (b"@T2 PUT k 2\n", b"[T2] blocked"),
                   (b"\x04", None)])
for want in ('[T2] (error) BLOCKED: still blocked at the end of input; giving up on it',
             '[T2] waiting: T2 (txn 2) X "k" waiting', '[T2] holder:  T1 (txn 1) X "k" held'):
    if want not in out:
        print("# missing %r" % want); bad = True
if bad or st < 0:
    print("# " + out.replace("\n", "\n# "))
sys.exit(1 if bad or st < 0 else 0)
EOF
    st=$?
    sed -n 's/^#/#/p' "$tmp/pty.out"
    ok $st "interactive: errors leave exit status 0; Ctrl-D says what a blocked session waits for"
else
    skip "python3 is not installed"
fi

# ---- .sleep is sleeping, not blocked -----------------------------------------------------------
run_cli --wait 300 -c '@T2 .sleep 1.5' -c '.sessions'
[ "$out" = '[T2] sleeping
* T1       idle         defaults SNAPSHOT OPTIMISTIC
  T2       sleeping     defaults SNAPSHOT OPTIMISTIC
[T2] OK' ]
ok $? ".sleep longer than --wait is reported sleeping"

run_cli --format json --wait 300 -c '@T2 .sleep 1'
[ "$out" = '{"session":"T2","event":"sleeping"}
{"session":"T2","ok":true}' ]
ok $? ".sleep in JSON: a sleeping event"

# ---- the exit status of scripts is unchanged -----------------------------------------------
out=$(printf 'FROB\nPUT a 1\n' | "$KVCLI" 2>&1)
st=$?
[ "$st" -eq 1 ] && [ "$out" = "(error) SYNTAX: unknown command 'FROB' (HELP lists the commands)
OK" ]
ok $? "piped stdin: an error still exits 1"

run_cli -f - <"$tmp/inner.kv"
[ "$st" -eq 1 ] && printf '%s\n' "$out" | grep -q '^(error) INVALID: <stdin>:4: '
ok $? "-f - names <stdin> in errors"
