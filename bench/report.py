"""bench/run.py's results as text rows and as the markdown tables of docs/benchmarks.md, with the
issue's goals marked met or not met from the figures.

    .venv/bin/python -m bench.report                      # bench/.work/results.json -> markdown on stdout
    .venv/bin/python -m bench.report other-results.json

One table per model and client connection count (the HTTP peers, a connection per request, beside
protoserve in each), the servers' memory, and the goals:
- protoserve's rows/s >= 3x the best peer's at c64 x 1 and c64 x 32 (each connection count);
- protoserve's p50 at concurrency 1 under 1 ms (iris-knn) and 2 ms (penguins-pipeline);
- protoserve's server CPU per call at c64 x 32 <= 1.3x that at c64 x 1;
- protoserve's p99 never above the best (lowest) p99 of the peers at the same point.
Peers are every target but protoserve and the floors (echo, proto-floor, model-floor) and protoserve-no-levers.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

PROTOSERVE = "protoserve"
# Not peers: the floors, and protoserve with its levers off (the "before" of each lever).
FLOORS = ("echo", "proto-floor", "model-floor", "protoserve-no-levers")
THROUGHPUT_FACTOR = 3.0
THROUGHPUT_POINTS = ((64, 1), (64, 32))
P50_LIMITS_MS = {"iris-knn": 1.0, "penguins-pipeline": 2.0}
CPU_GROWTH = 1.3  # CPU per call at c64 x 32 over c64 x 1
PER_REQUEST = 0  # `connections` of an HTTP point: a connection per request
RESULTS = Path(__file__).resolve().parent / ".work" / "results.json"

Row = dict[str, Any]
TEXT_FORMAT = "{:<18} {:<14} {:<14} {:>5} {:<9} {:>9} {:>10} {:>8} {:>8} {:>10} {:>6}"


def connections_label(connections: int) -> str:
    return "per request" if connections == PER_REQUEST else str(connections)


def point_label(row: Row) -> str:
    return f"c{row['concurrency']} × {row['rows']}"


def text_header() -> str:
    return TEXT_FORMAT.format("model", "target", "protocol", "conns", "point", "req/s", "rows/s", "p50 ms", "p99 ms",
                              "cpu ms/req", "errors")


def text_row(r: Row) -> str:
    conns = "req" if r["connections"] == PER_REQUEST else str(r["connections"])
    return TEXT_FORMAT.format(
        r["model"], r["target"], r["protocol"], conns, f"c{r['concurrency']}x{r['rows']}", f"{r['rps']:.0f}",
        f"{r['rows_per_s']:.0f}", f"{r['p50_ms']:.2f}", f"{r['p99_ms']:.2f}", f"{r['cpu_ms_per_req']:.3f}", r["errors"],
    ) + ("  WRONG ANSWERS" if r.get("answers_ok") is False else "")


def is_peer(row: Row) -> bool:
    """A peer's point with answers (no latency figures without them)."""
    return row["target"] != PROTOSERVE and row["target"] not in FLOORS and row["rps"] > 0


def connection_counts(points: list[Row], model: str) -> list[int]:
    """The gRPC client's connection counts measured for a model (PER_REQUEST alone if none)."""
    counts = sorted({r["connections"] for r in points if r["model"] == model and r["connections"] != PER_REQUEST})
    return counts or [PER_REQUEST]


def table_rows(points: list[Row], model: str, connections: int) -> list[Row]:
    """A model's rows measured over `connections`, and the HTTP targets' (a connection per request)."""
    return [r for r in points if r["model"] == model and r["connections"] in (connections, PER_REQUEST)]


def at(rows: list[Row], concurrency: int, count: int) -> list[Row]:
    return [r for r in rows if (r["concurrency"], r["rows"]) == (concurrency, count)]


@dataclass(frozen=True)
class Check:
    goal: str
    met: bool
    detail: str


def checks(points: list[Row]) -> Iterator[Check]:
    """Every measured instance of every goal."""
    for model in dict.fromkeys(r["model"] for r in points):
        for connections in connection_counts(points, model):
            rows = table_rows(points, model, connections)
            where = f"{model}, {connections_label(connections)} connection(s)"
            yield from throughput_checks(rows, where)
            yield from latency_checks(rows, model, where)
            yield from cpu_checks(rows, where)
            yield from tail_checks(rows, where)


def throughput_checks(rows: list[Row], where: str) -> Iterator[Check]:
    for concurrency, count in THROUGHPUT_POINTS:
        here = at(rows, concurrency, count)
        ours = [r for r in here if r["target"] == PROTOSERVE]
        peers = [r for r in here if is_peer(r)]
        if ours and peers:
            best = max(peers, key=lambda r: r["rows_per_s"])
            ratio = ours[0]["rows_per_s"] / best["rows_per_s"] if best["rows_per_s"] else float("inf")
            yield Check(f"rows/s ≥ {THROUGHPUT_FACTOR:g}× the best peer at c{concurrency} × {count}", ratio >= THROUGHPUT_FACTOR,
                        f"{where}: {ours[0]['rows_per_s']:,.0f} vs {best['target']} {best['rows_per_s']:,.0f} ({ratio:.2f}×)")


def latency_checks(rows: list[Row], model: str, where: str) -> Iterator[Check]:
    limit = P50_LIMITS_MS.get(model)
    for r in at(rows, 1, 1):
        if limit is not None and r["target"] == PROTOSERVE:
            yield Check(f"p50 at c1 × 1 < {limit:g} ms ({model})", r["p50_ms"] < limit, f"{where}: {r['p50_ms']:.2f} ms")


def cpu_checks(rows: list[Row], where: str) -> Iterator[Check]:
    ours = [r for r in rows if r["target"] == PROTOSERVE]
    one, many = at(ours, 64, 1), at(ours, 64, 32)
    if one and many:
        growth = many[0]["cpu_ms_per_req"] / one[0]["cpu_ms_per_req"] if one[0]["cpu_ms_per_req"] else float("inf")
        yield Check(f"server CPU per call at c64 × 32 ≤ {CPU_GROWTH:g}× that at c64 × 1", growth <= CPU_GROWTH,
                    f"{where}: {many[0]['cpu_ms_per_req']:.3f} vs {one[0]['cpu_ms_per_req']:.3f} ms ({growth:.2f}×)")


def tail_checks(rows: list[Row], where: str) -> Iterator[Check]:
    for ours in (r for r in rows if r["target"] == PROTOSERVE):
        peers = [r for r in at(rows, ours["concurrency"], ours["rows"]) if is_peer(r)]
        if peers:
            best = min(peers, key=lambda r: r["p99_ms"])
            yield Check("p99 never above the best peer's", ours["p99_ms"] <= best["p99_ms"],
                        f"{where}, {point_label(ours)}: {ours['p99_ms']:.2f} vs {best['target']} {best['p99_ms']:.2f} ms")


def goals(points: list[Row]) -> dict[str, list[Check]]:
    """The checks grouped by goal, in the order first measured."""
    grouped: dict[str, list[Check]] = {}
    for check in checks(points):
        grouped.setdefault(check.goal, []).append(check)
    return grouped


def verdict(met: bool) -> str:
    return "met" if met else "NOT met"


def goals_text(run: dict[str, Any]) -> str:
    lines = []
    for goal, found in goals(run["points"]).items():
        lines.append(f"{verdict(all(c.met for c in found))}: {goal}")
        lines += [f"    {verdict(c.met):<7} {c.detail}" for c in found]
    return "\n".join(lines)


def servers_text(run: dict[str, Any]) -> str:
    return "\n".join(f"{s['target']:<18} RSS {s['rss_kib'] / 1024:>8.1f} MiB over {len(s['processes'])} process(es) "
                     f"(largest {largest_mib(s):.1f} MiB), serving {', '.join(s['models'])}" for s in run["servers"])


def largest_mib(server: dict[str, Any]) -> float:
    """The largest process of a server's tree (a protoserve worker with every model loaded)."""
    return max((kib for _, kib in server["processes"]), default=0) / 1024


def process_sizes(server: dict[str, Any]) -> str:
    return ", ".join(f"{name} {kib / 1024:,.0f}" for name, kib in server["processes"])


def markdown_table(rows: list[Row]) -> list[str]:
    lines = ["| target | protocol | point | req/s | rows/s | p50 ms | p99 ms | server CPU ms/req | errors |",
             "|---|---|---|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        target = f"**{r['target']}**" if r["target"] == PROTOSERVE else r["target"]
        if r.get("answers_ok") is False:  # bench/run.py's check: its answers differ from the estimator's
            target += " (wrong answers)"
        lines.append(f"| {target} | {r['protocol']} | {point_label(r)} | {r['rps']:,.0f} | {r['rows_per_s']:,.0f} | "
                     f"{r['p50_ms']:.2f} | {r['p99_ms']:.2f} | {r['cpu_ms_per_req']:.2f} | {r['errors']} |")
    return lines


def markdown(run: dict[str, Any]) -> str:
    points = run["points"]
    lines = [f"Run {run['date']} on {run['cpus']} CPUs (load average {run['load_average_start']:.1f} at the start, "
             f"{run.get('load_average_end', float('nan')):.1f} at the end):", "", "```sh", run["command"], "```"]
    for model in dict.fromkeys(r["model"] for r in points):
        for connections in connection_counts(points, model):
            title = f"#### {model}"
            if connections != PER_REQUEST:
                title += f", gRPC client over {connections} connection{'s' if connections > 1 else ''}"
            lines += ["", title, "", *markdown_table(table_rows(points, model, connections))]
    lines += ["", "#### Server memory after the run (RSS summed over the process tree)", "",
              "| target | models | processes (MiB each) | RSS MiB, all | RSS MiB, largest process |", "|---|---|---|---:|---:|"]
    lines += [f"| {s['target']} | {', '.join(s['models'])} | {process_sizes(s)} | {s['rss_kib'] / 1024:,.1f} | "
              f"{largest_mib(s):,.1f} |" for s in run["servers"]]
    lines += ["", "#### Goals", ""]
    for goal, found in goals(points).items():
        lines.append(f"- **{verdict(all(c.met for c in found))}**: {goal}")
        lines += [f"  - {verdict(c.met)}: {c.detail}" for c in found]
    return "\n".join(lines) + "\n"


def main() -> None:
    path = Path(sys.argv[1]) if len(sys.argv) > 1 else RESULTS
    print(markdown(json.loads(path.read_text())), end="")


if __name__ == "__main__":
    main()
