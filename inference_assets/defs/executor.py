"""The executor of every run of this code location, jobs and UI materializations alike.

Runs execute in one process (`in_process_executor`): the bundle is loaded once per run and
shared by the scoring step and its checks, and a run never uses more cores than its
models do. How many runs execute at once is the instance's business (dagster.yaml: run
queue and concurrency pools), not the job's.
"""

import dagster as dg


@dg.definitions
def executor() -> dg.Definitions:
    return dg.Definitions(executor=dg.in_process_executor)
