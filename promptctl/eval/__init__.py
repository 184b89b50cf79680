"""Eval replay: run an eval set through the runtime resolver, score, compare two versions, gate CI.

Modules: ``evalset`` (file format and validation), ``scorers`` (rubrics), ``stats`` (means, bootstrap
intervals, the gate), ``runner`` (resolution, spans, threads, timeouts), ``results`` (the results
directory), ``report`` (the comparison report built from result records).
"""
