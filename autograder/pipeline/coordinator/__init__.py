"""The coordinator's wing: one run (:mod:`.assignment`) -> jobs -> runner -> record
(gradebook first, then files) -> export; gradebook (our tables), report (what it prints).
"""
