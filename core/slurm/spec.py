"""What a Slurm job asks the cluster for. One name per setting: the field name is the key under
`slurm:` in <workspace>/settings.yaml, the CLI flag (`gpus_per_node` <-> `--gpus-per-node`) and the
page's widget key.

    # <workspace>/settings.yaml: defaults for every Slurm job (the CLI and the page override them)
    slurm:
      partition: gpu
      account: my-lab
      qos: normal
      nodes: 1
      gpus_per_node: 8
      cpus_per_node: 64          # --cpus-per-task of the one task per node (torchrun and its ranks)
      mem: 480G                  # per node; empty: the cluster's default
      time: "04:00:00"
      requeue: true              # time limit or preemption: resubmit and resume from the checkpoint
      extra_sbatch: ["--constraint=h100", "--exclusive"]
      setup: ["module load cuda/12.4"]   # shell lines run before training (shown in the script)

`extra_sbatch` and `setup` come from settings.yaml only (the local user's own file), never from the
page; every other value is checked here, so nothing typed anywhere can break out of its line in the
batch script.
"""
from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass, field

from core.config import quoted
from core.errors import InputError, Problem
from core.messages import Msg

# used with fullmatch: `$` alone lets a final line break through ("lab\n" ended its #SBATCH line early)
NAME_RE = re.compile(r"^[A-Za-z0-9_.+-]+(,[A-Za-z0-9_.+-]+)*$")   # partition (a list allowed), account, QoS
MEM_RE = re.compile(r"^[0-9]+[KMGT]?$", re.IGNORECASE)
TIME_RE = re.compile(r"^(?:(\d+)-)?(\d{1,3}):([0-5]?\d):([0-5]?\d)$")
CONTROL_RE = re.compile(r"[\x00-\x1f\x7f]")
MAX_NODES, MAX_GPUS, MAX_PROCS, MAX_CPUS = 1024, 64, 64, 4096


@dataclass
class SlurmSpec:
    nodes: int = 1
    gpus_per_node: int = 1          # 0: CPU-only nodes (the demo model, a test cluster)
    nproc: int | None = None        # training processes per node; default one per GPU (1 without GPUs)
    cpus_per_node: int | None = None  # default: one per training process
    mem: str = ""                   # per node, e.g. "64G"; "" = the cluster's default
    time: str = ""                  # time limit [D-]HH:MM:SS; "" = the partition's default
    partition: str = ""
    account: str = ""
    qos: str = ""
    requeue: bool = False
    extra_sbatch: list[str] = field(default_factory=list)
    setup: list[str] = field(default_factory=list)

    @property
    def procs_per_node(self) -> int:
        return self.nproc or self.gpus_per_node or 1

    @property
    def cpus(self) -> int:
        return self.cpus_per_node or self.procs_per_node

    @property
    def world_size(self) -> int:
        return self.nodes * self.procs_per_node

    def time_seconds(self) -> int | None:
        return parse_time(self.time) if self.time else None

    def problems(self, where=lambda name: "--" + name.replace("_", "-")) -> list[Problem]:
        """Every problem at once. `where` names a field the way the user wrote it (a flag, a key)."""
        out = []
        for name, low, high in (("nodes", 1, MAX_NODES), ("gpus_per_node", 0, MAX_GPUS)):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
                out.append(Problem(where(name), Msg("cluster.whole_range", low=low, high=high, value=_shown(value))))
        for name, high in (("nproc", MAX_PROCS), ("cpus_per_node", MAX_CPUS)):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= high):
                out.append(Problem(where(name), Msg("cluster.whole_range", low=1, high=high, value=_shown(value))))
        if isinstance(self.gpus_per_node, int) and isinstance(self.nproc, int) and self.gpus_per_node \
                and self.nproc > self.gpus_per_node:
            out.append(Problem(where("nproc"), Msg("cluster.procs_gpus", procs=self.nproc, gpus=self.gpus_per_node),
                               Msg("cluster.procs_gpus.hint")))
        for name in ("partition", "account", "qos"):
            value = getattr(self, name)
            if not isinstance(value, str) or (value and not NAME_RE.fullmatch(value)):
                out.append(Problem(where(name), Msg("cluster.bad_name", value=repr(value)), Msg("cluster.bad_name.hint")))
        if not isinstance(self.mem, str) or (self.mem and not MEM_RE.fullmatch(self.mem)):
            out.append(Problem(where("mem"), Msg("cluster.bad_mem", value=repr(self.mem)), Msg("cluster.bad_mem.hint")))
        if not isinstance(self.time, str) or (self.time and parse_time(self.time) is None):
            out.append(Problem(where("time"), Msg("cluster.bad_time", value=repr(self.time)), Msg("cluster.bad_time.hint")))
        if not isinstance(self.requeue, bool):
            out.append(Problem(where("requeue"), Msg("cluster.not_bool", value=repr(self.requeue))))
        out += _line_problems(self.extra_sbatch, where("extra_sbatch"), sbatch=True)
        out += _line_problems(self.setup, where("setup"), sbatch=False)
        return out

    def cli_flags(self) -> list[str]:
        """The `train` flags that ask for this (Show command, config.yaml's header)."""
        out = ["--slurm", "--nodes", str(self.nodes), "--gpus-per-node", str(self.gpus_per_node)]
        out += ["--nproc", str(self.procs_per_node)] if not self.gpus_per_node else []
        for name in ("partition", "time", "account", "qos", "mem"):
            out += [f"--{name}", getattr(self, name)] if getattr(self, name) else []
        out += ["--cpus-per-node", str(self.cpus_per_node)] if self.cpus_per_node else []
        return out + (["--requeue"] if self.requeue else [])

    def sbatch_lines(self) -> list[str]:
        """The extra options, each as an `#SBATCH --option` line."""
        return ["#SBATCH " + _strip_sbatch(line) for line in self.extra_sbatch]


def _shown(value) -> str:
    """A value as a message quotes it: text in quotes, a number of 5,000 digits without repr()'s ValueError."""
    return repr(value) if isinstance(value, str) else quoted(value)


def _strip_sbatch(line: str) -> str:
    text = line.strip()
    return text[len("#SBATCH"):].strip() if text.startswith("#SBATCH") else text


JOB_NAME_RE = re.compile(r"-J|--jo(b(-(n(a(m(e)?)?)?)?)?)?(=|\s|$)")  # sbatch takes --job-n=x for --job-name=x


def _line_problems(lines, where: str, sbatch: bool) -> list[Problem]:
    if not isinstance(lines, list):
        return [Problem(where, Msg("cluster.not_lines", type=type(lines).__name__))]
    out = []
    for i, line in enumerate(lines):
        if not isinstance(line, str) or CONTROL_RE.search(line) or not line.strip():
            out.append(Problem(f"{where}[{i}]", Msg("cluster.one_line", value=repr(line))))
        elif sbatch and not _strip_sbatch(line).startswith("-"):
            out.append(Problem(f"{where}[{i}]", Msg("cluster.not_option", value=repr(line)), Msg("cluster.not_option.hint")))
        elif sbatch and JOB_NAME_RE.match(_strip_sbatch(line)):
            # Danlu knows its job on the cluster by its name too (a job number may be reused): not to be changed
            out.append(Problem(f"{where}[{i}]", Msg("cluster.own_job_name", value=repr(line)),
                               Msg("cluster.own_job_name.hint")))
    return out


def parse_time(text: str) -> int | None:
    """'04:00:00' -> 14400, '1-12:00:00' -> 129600; None when it is not [D-]HH:MM:SS."""
    m = TIME_RE.match(str(text).strip())
    if not m:
        return None
    days, hours, minutes, seconds = (int(g) if g else 0 for g in m.groups())
    total = ((days * 24 + hours) * 60 + minutes) * 60 + seconds
    return total if total > 0 else None


def format_time(seconds: int) -> str:
    days, rest = divmod(int(seconds), 86400)
    text = f"{rest // 3600:02d}:{rest % 3600 // 60:02d}:{rest % 60:02d}"
    return f"{days}-{text}" if days else text


def warn_seconds(spec: SlurmSpec) -> int:
    """How long before the time limit the ranks are asked to save and stop (--signal=B:TERM@N).
    Slurm sends it up to a minute early (it checks time limits every 30 s or so), so a short job
    gets a short warning and a long job five minutes: enough to write an adapter checkpoint."""
    limit = spec.time_seconds()
    return 300 if limit is None else max(10, min(300, limit // 6))


def settings_spec(settings: dict) -> SlurmSpec:
    """The defaults under `slurm:` in settings.yaml (unknown keys and bad values named at once)."""
    raw = settings.get("slurm") or {}
    where = lambda name: f"settings.yaml: slurm.{name}"  # noqa: E731
    if not isinstance(raw, dict):
        raise InputError(problems=[Problem("settings.yaml: slurm", Msg("cluster.not_mapping"))],
                         title=Msg("cluster.settings_title"))
    names = [f.name for f in dataclasses.fields(SlurmSpec)]
    problems = [Problem(where(k), Msg("cluster.unknown_setting"), Msg("cluster.known.hint", names=", ".join(names)))
                for k in raw if k not in names]
    values = {k: v for k, v in raw.items() if k in names}
    if isinstance(values.get("time"), int) and not isinstance(values["time"], bool):
        # YAML reads an unquoted 04:00:00 as the number 14400: say how to write it
        problems.append(Problem(where("time"), Msg("cluster.time_number", value=values.pop("time")),
                                Msg("cluster.time_number.hint")))
    for key in ("mem", "partition", "account", "qos"):
        if isinstance(values.get(key), (int, float)) and not isinstance(values.get(key), bool):
            values[key] = str(values[key])
    for key in ("extra_sbatch", "setup"):
        if isinstance(values.get(key), str):
            values[key] = [values[key]]
    spec = SlurmSpec(**values)
    problems += spec.problems(where)
    if problems:
        raise InputError(problems=problems, title=Msg("cluster.yaml_title"))
    return spec


def with_overrides(base: SlurmSpec, **overrides) -> SlurmSpec:
    """`base` with every override that is not None (the CLI's flags, the page's widgets)."""
    return dataclasses.replace(base, **{k: v for k, v in overrides.items() if v is not None})
