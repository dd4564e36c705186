"""The worker's wing: one job (:mod:`.submission`) -> precheck -> preprocessors ->
execution -> verify -> scoring -> feedback; warm, budget and folders beside them.
"""
