#!/usr/bin/env bash
# System packages the grader needs: bubblewrap (the sandbox around student kernels).
# Installed with apt-get when we are root; otherwise a one-line message says what to do.
set -u
if command -v bwrap >/dev/null 2>&1; then
    exit 0
fi
if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
    echo "installing bubblewrap (sandbox for student kernels) with apt-get ..."
    if (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq bubblewrap) >/tmp/rnn-course-apt.log 2>&1; then
        exit 0
    fi
    echo "warning: apt-get could not install bubblewrap (log: /tmp/rnn-course-apt.log)." >&2
else
    echo "warning: bubblewrap (bwrap) is not installed and this user cannot install it;" \
         "ask an administrator for 'apt-get install bubblewrap'." >&2
fi
echo "warning: grading will refuse to run student code until bwrap is available" \
     "(or until you pass --unsafe-no-sandbox)." >&2
exit 0
