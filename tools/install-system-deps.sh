#!/usr/bin/env bash
# What the grader needs from the system, set up when we are root; otherwise a
# one-line message says what to ask for.
#  1. bubblewrap (the sandbox around student kernels), with apt-get;
#  2. the accounts rnn-sbx-00 .. rnn-sbx-15: a root grader runs each kernel as
#     one of them, leased for the kernel's lifetime, so that RLIMIT_NPROC (counted
#     per uid) is not shared between students (autograder/sandbox/uids.py);
#  3. chromium (headless), for the test that loads a planted submission's feedback
#     in a real browser (tests/test_sanitize.py) and the hub's browser test
#     (tests/test_hub.py); grading does not need it;
#  4. for `make hub` and tests/test_hub.py (tools/hub/hub.py): node and npm
#     (JupyterHub's proxy, configurable-http-proxy, comes from npm) and Debian's
#     python3-venv (the hub's venv is built from /usr/bin/python3).
set -u
# apt-get, useradd, ... whatever PATH this was started with (`env -i`, `su`)
export PATH="${PATH:+$PATH:}/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
POOL_SIZE=${RNN_SBX_ACCOUNTS:-16}

install_bwrap() {
    if command -v bwrap >/dev/null 2>&1; then
        return 0
    fi
    if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
        echo "installing bubblewrap (sandbox for student kernels) with apt-get ..."
        if (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq bubblewrap) >/tmp/rnn-course-apt.log 2>&1; then
            return 0
        fi
        echo "warning: apt-get could not install bubblewrap (log: /tmp/rnn-course-apt.log)." >&2
    else
        echo "warning: bubblewrap (bwrap) is not installed and this user cannot install it;" \
             "ask an administrator for 'apt-get install bubblewrap'." >&2
    fi
    echo "warning: grading will refuse to run student code until bwrap is available" \
         "(or until you pass --unsafe-no-sandbox)." >&2
}

# The absolute path of a system tool, whatever PATH says (`env -i`, some `su` and cron
# give a PATH without /usr/sbin, where useradd lives); empty when it is missing.
sys_tool() {
    local dir
    for dir in /usr/local/sbin /usr/local/bin /usr/sbin /usr/bin /sbin /bin; do
        if [ -x "$dir/$1" ]; then
            echo "$dir/$1"
            return 0
        fi
    done
    return 1
}

create_accounts() {
    # Only a root grader switches uids; a non-root grader's kernels run as itself.
    [ "$(id -u)" = "0" ] || return 0
    local useradd getent
    useradd=$(sys_tool useradd)
    getent=$(sys_tool getent)
    if [ -z "$useradd" ] || [ -z "$getent" ]; then
        echo "error: useradd or getent is missing: no sandbox accounts rnn-sbx-NN, so grading" \
             "as root will refuse to start (apt-get install passwd; see docs/security.md)." >&2
        return 1
    fi
    local nologin=/usr/sbin/nologin
    [ -x "$nologin" ] || nologin=/bin/false
    local i name made=0
    for i in $(seq 0 $((POOL_SIZE - 1))); do
        name=$(printf 'rnn-sbx-%02d' "$i")
        if ! "$getent" passwd "$name" >/dev/null; then
            if "$useradd" --system --user-group --no-create-home --home-dir /nonexistent \
                    --shell "$nologin" --comment "rnn-course sandboxed kernel" "$name" 2>>/tmp/rnn-course-useradd.log; then
                made=$((made + 1))
            else
                echo "error: could not create account $name (log: /tmp/rnn-course-useradd.log):" \
                     "grading as root will refuse to start until the rnn-sbx-NN accounts exist." >&2
                return 1
            fi
        fi
    done
    if [ "$made" -gt 0 ]; then
        echo "created $made sandbox account(s) rnn-sbx-NN (one uid per running kernel)"
    fi
}

install_chromium() {
    if command -v chromium >/dev/null 2>&1; then
        return 0
    fi
    if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
        echo "installing chromium (headless browser for tests/test_sanitize.py) with apt-get ..."
        if (DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium \
                || (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium)) \
                >/tmp/rnn-course-apt-chromium.log 2>&1; then
            return 0
        fi
    fi
    echo "warning: chromium is not installed: the browser test of tests/test_sanitize.py will fail" \
         "(as root: apt-get install chromium)." >&2
}

install_hub_deps() {
    local wanted=()
    command -v npm >/dev/null 2>&1 && command -v node >/dev/null 2>&1 || wanted+=(nodejs npm)
    /usr/bin/python3 -c "import ensurepip, venv" >/dev/null 2>&1 || wanted+=(python3-venv)
    [ "${#wanted[@]}" -eq 0 ] && return 0
    if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
        echo "installing ${wanted[*]} (for make hub) with apt-get ..."
        if (DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${wanted[@]}" \
                || (apt-get update -qq \
                    && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${wanted[@]}")) \
                >/tmp/rnn-course-apt-hub.log 2>&1; then
            return 0
        fi
    fi
    echo "warning: ${wanted[*]} not installed: make hub and tests/test_hub.py need them" \
         "(as root: apt-get install ${wanted[*]})." >&2
}

install_bwrap
create_accounts
install_chromium
install_hub_deps
exit 0
