"""The course's nbgrader exchange over HTTP: the client, for students' and instructors' servers.

:mod:`rnn_exchange.plugin` holds nbgrader's exchange classes that talk to the
course's grading service (``autograder.service.http_exchange`` is the server);
:mod:`rnn_exchange.protocol` what both sides share.  Outside ``autograder/``
on purpose: students' servers import this package and must never have
``autograder/`` (which holds the solutions) on their path.
"""
