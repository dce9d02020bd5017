"""Run ``vizcli ARGS…`` in this process and record, in the JSON file ``$VIZCLI_DRIVER_CPU``, the driver's own CPU
seconds, the whole machine's CPU seconds over the run (from /proc/stat: the benchmark runs nothing else), and the
callable-class builds the dataset run reports."""

import atexit
import json
import os
import resource
import sys


def machine_cpu_seconds():
    with open("/proc/stat") as handle:
        fields = [int(value) for value in handle.readline().split()[1:]]
    busy = sum(fields) - fields[3] - fields[4]  # all but idle and iowait
    return busy / os.sysconf("SC_CLK_TCK")


def main():
    import vizcli.datasets.run as run

    recorded = {}
    original = run.run_dataset

    def recording(*args, **kwargs):
        summary = original(*args, **kwargs)
        recorded.update(builds=summary.builds, rows=summary.rows)
        return summary

    run.run_dataset = recording
    from vizcli.cli import main as vizcli_main

    start = machine_cpu_seconds()

    def record() -> None:  # vizcli's main runs the atexit handlers, then leaves with os._exit
        usage = resource.getrusage(resource.RUSAGE_SELF)
        recorded.update(driver_cpu=usage.ru_utime + usage.ru_stime, machine_cpu=machine_cpu_seconds() - start)
        with open(os.environ["VIZCLI_DRIVER_CPU"], "w") as handle:
            json.dump(recorded, handle)

    atexit.register(record)
    sys.argv = ["vizcli", *sys.argv[1:]]
    vizcli_main()


if __name__ == "__main__":
    main()
