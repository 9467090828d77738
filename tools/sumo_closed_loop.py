#!/usr/bin/env python3
"""The closed loop against SUMO, measured by SUMO (issue 5, item 4, second half).

Per shipped network and seed, on the same vehicles (the ones Greenwave's simulator generates for
the seed, `greenwave sumo export --seed S`), SUMO runs seven signal programs and reports each
vehicle's time loss (`--tripinfo-output`, `timeLoss`):

  default     SUMO's own program: the net built by netconvert from the export's plain files
              without our programs (`--tllogic-files` left out), so netconvert generates it;
              this run also carries the E1 loops at the network's detectors (`<name>.det.add.xml`)
  webster     SUMO's `tools/tlsCycleAdaptation.py -n default.net.xml -r ROU`, loaded with -a
  actuated    the same plain files built with `netconvert --tls.default-type actuated`
  greenwave   the closed loop: the default run's E1 output -> `greenwave sumo counts` ->
              `greenwave plan --counts` -> `greenwave sumo export --plan` -> its `.tls.add.xml`,
              loaded with -a on the export's net
  greenwave_act  the same plans exported as Greenwave's isolated actuated operation
              (`greenwave sumo export --plan --actuated`: each stage from its minimum green to
              2 x its planned green, gap-out after 3 s on the network's loops), loaded with the
              loops (`<name>.det.add.xml`) on the export's net
  shipped     the network's own plans in force (the export's `.tls.add.xml`), for reference
  webster_gw  `tlsCycleAdaptation.py` on the export's net, whose program is ours (Greenwave's
              stages, clearances and plans in force): SUMO's Webster on Greenwave's stages,
              which separates the stage structure from the timing

On the netgenerate networks (`ng-grid`, `ng-spider`, `ng-rand`) and the OpenStreetMap one
(`osm-town`: GENERATED below, imported with `greenwave sumo import`) every program runs on the
generated net itself: default is its own program, webster tlsCycleAdaptation.py on it,
actuated the same netgenerate or netconvert call with `--tls.default-type actuated`, greenwave and shipped (the imported plans) the export's `--onto`
programs on SUMO's own traffic lights (greenwave_act: `--onto --actuated`, with the export's
loops); no webster_gw (the stages are SUMO's).

Every run: `sumo -n NET -r ROU [-a ADD] --step-length 1 --seed S --time-to-teleport 300
--end <demand + 3600 s> --tripinfo-output trips.xml`, so that vehicles still queued when the
demand ends can finish. Figures: mean timeLoss over completed vehicles (tripinfo), completed
vehicles, teleports; means over seeds. Marks, for greenwave and for greenwave_act: at least 25%
below default, at least 10% below webster, and "close to actuated" = at most 5% above it.

Python 3 standard library only. Needs the release binary (`cargo build --release -p
greenwave`) and SUMO (`sumo`, `netconvert` and the `tools` folder) from SUMO_HOME, PATH or the
`.venv-sumo` virtualenv (`python3 -m venv .venv-sumo && .venv-sumo/bin/pip install
eclipse-sumo`). Not run in CI: SUMO takes minutes.

    python3 tools/sumo_closed_loop.py                          # 4 networks, seeds 1-3
    python3 tools/sumo_closed_loop.py --networks single --seeds 5 --json
    python3 tools/sumo_closed_loop.py --networks ng-grid,ng-spider,ng-rand --jobs 2
"""

import argparse
import concurrent.futures
import json
import os
import re
import shutil
import subprocess
import sys
import time
import xml.etree.ElementTree as ET

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NETWORKS = ["single", "arterial", "grid4", "district"]
# Networks made by SUMO's netgenerate (issue 5, item 4), and one by netconvert from an
# OpenStreetMap extract (the import tests' town.osm, with the options SUMO recommends for OSM:
# joined signals, sidewalks, pedestrian crossings), with demand by randomTrips.py (1 h, fringe
# to fringe, routed by duarouter), imported with `greenwave sumo import`: the tool, its options
# (the same seeds every time) and randomTrips' period (s between departures).
GENERATED = {
    "ng-grid": ("netgenerate", ["--grid", "--grid.number", "4", "--grid.length", "200",
                                "--grid.attach-length", "150", "--default.lanenumber", "2",
                                "--tls.guess", "--seed", "1"], 0.5),
    "ng-spider": ("netgenerate", ["--spider", "--spider.arm-number", "6", "--spider.circle-number", "3",
                                  "--spider.space-radius", "150", "--spider.attach-length", "150",
                                  "--default.lanenumber", "2", "--tls.guess", "--seed", "1"], 1.0),
    "ng-rand": ("netgenerate", ["--rand", "--rand.iterations", "60", "--rand.min-distance", "150",
                                "--rand.max-distance", "300", "--default.lanenumber", "2", "--tls.guess",
                                "--seed", "7"], 2.5),
    "osm-town": ("netconvert", ["--osm-files", os.path.join(ROOT, "sumo", "tests", "data", "town.osm"),
                                "--tls.guess-signals", "--tls.discard-simple", "--tls.join",
                                "--junctions.join", "--sidewalks.guess", "--crossings.guess",
                                "--seed", "1"], 2.0),
}
TRIPS_SEED = "42"
PROGRAMS = ["default", "webster", "actuated", "greenwave", "greenwave_act", "shipped", "webster_gw"]
# The closed loop's programs whose marks are computed.
CANDIDATES = ["greenwave", "greenwave_act"]
# What Greenwave would deploy: the candidate when its own simulation check accepts it, else the
# plans in force stay (no extra SUMO run: one of the two runs above).
ROWS = PROGRAMS + ["deployed"]
TELEPORT = "300"
DRAIN_S = 3600


def die(msg):
    print(f"sumo_closed_loop: {msg}", file=sys.stderr)
    sys.exit(2)


def find_sumo():
    """(bin folder with sumo and netconvert, tools folder, python that can run the tools)."""
    cands = []
    home = os.environ.get("SUMO_HOME")
    if home:
        cands.append((os.path.join(home, "bin"), os.path.join(home, "tools"), sys.executable))
    venv = os.path.join(ROOT, ".venv-sumo")
    vpy = os.path.join(venv, "bin", "python")
    if os.path.isfile(vpy):
        try:
            pkg = subprocess.run(
                [vpy, "-c", "import sumo, os; print(os.path.dirname(sumo.__file__))"],
                capture_output=True, text=True, check=True).stdout.strip()
            cands.append((os.path.join(venv, "bin"), os.path.join(pkg, "tools"), vpy))
        except (subprocess.CalledProcessError, OSError):
            pass
    on_path = shutil.which("sumo")
    if on_path:
        b = os.path.dirname(os.path.realpath(on_path))
        cands.append((b, os.path.join(os.path.dirname(b), "tools"), sys.executable))
    for b, tools, py in cands:
        if (os.path.isfile(os.path.join(b, "sumo")) and os.path.isfile(os.path.join(b, "netconvert"))
                and os.path.isfile(os.path.join(tools, "tlsCycleAdaptation.py"))):
            return b, tools, py
    die("SUMO not found: need sumo, netconvert and tools/tlsCycleAdaptation.py from SUMO_HOME, "
        "PATH or .venv-sumo (install: python3 -m venv .venv-sumo && "
        ".venv-sumo/bin/pip install eclipse-sumo)")


def run(cmd, log, cwd=None, env=None):
    """Run a command, append it and its output to `log`; stop with its output on failure."""
    with open(log, "a") as f:
        f.write("$ " + " ".join(cmd) + "\n")
    p = subprocess.run(cmd, capture_output=True, text=True, cwd=cwd, env=env)
    with open(log, "a") as f:
        f.write(p.stdout + p.stderr + "\n")
    if p.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({p.returncode}):\n{(p.stdout + p.stderr)[-2000:]}")
    return p.stdout + p.stderr


def netconvert_args(d, name, out, extra=()):
    f = lambda ext: os.path.join(d, f"{name}.{ext}")
    return ["--node-files", f("nod.xml"), "--edge-files", f("edg.xml"),
            "--connection-files", f("con.xml"), "--output-file", out,
            "--no-turnarounds", "true", "--offset.disable-normalization", "true",
            "--no-warnings", "true", *extra]


def demand_end_s(rou):
    last = 0.0
    for m in re.finditer(r'depart="([0-9.]+)"', open(rou).read()):
        last = max(last, float(m.group(1)))
    return last


def tripinfo(path):
    n, loss = 0, 0.0
    for _, el in ET.iterparse(path):
        if el.tag == "tripinfo":
            n += 1
            loss += float(el.get("timeLoss"))
            el.clear()
    return n, (loss / n if n else float("nan"))


def peak_hour(e1, out, demand_end):
    """Keep the E1 intervals of the busiest hour within the demand (all loops' counts summed),
    as tlsCycleAdaptation.py plans for the peak hour of the routes; returns its begin, s."""
    root = ET.parse(e1).getroot()
    ivs = [iv for iv in root.iter("interval") if float(iv.get("end")) <= demand_end + 1e-6]
    by_begin = {}
    for iv in ivs:
        b = float(iv.get("begin"))
        by_begin[b] = by_begin.get(b, 0.0) + float(iv.get("nVehContrib"))
    begins = sorted(by_begin)
    best, best_n = begins[0], -1.0
    for b in begins:
        if b > begins[0] and b + 3600 > demand_end + 1e-6:
            break
        n = sum(v for k, v in by_begin.items() if b <= k < b + 3600)
        if n > best_n:
            best, best_n = b, n
    keep = ET.Element("detector")
    for iv in ivs:
        b = float(iv.get("begin"))
        if best <= b < best + 3600:
            keep.append(iv)
    ET.ElementTree(keep).write(out, encoding="UTF-8", xml_declaration=True)
    return best


def sumo_run(ctx, net, rou, adds, out_dir, tag, seed, end_s):
    trips = os.path.join(out_dir, f"{tag}.trips.xml")
    cmd = [os.path.join(ctx["bin"], "sumo"), "-n", net, "-r", rou]
    if adds:
        cmd += ["-a", ",".join(adds)]
    cmd += ["--step-length", "1", "--seed", str(seed), "--end", str(int(end_s)),
            "--time-to-teleport", TELEPORT, "--tripinfo-output", trips,
            "--no-step-log", "true", "--no-warnings", "true",
            "--duration-log.statistics", "true"]
    t = time.time()
    text = run(cmd, os.path.join(out_dir, "log.txt"))
    m = re.search(r"Teleports:\s*(\d+)", text)
    ins = re.search(r"Inserted:\s*(\d+)", text)
    done, mean = tripinfo(trips)
    return {"completed": done, "mean_time_loss_s": mean,
            "teleports": int(m.group(1)) if m else 0,
            "inserted": int(ins.group(1)) if ins else None,
            "wall_s": round(time.time() - t, 1)}


def generate(ctx, name):
    """A netgenerate or OpenStreetMap network (static and actuated programs), its randomTrips demand and its
    import; returns the folder. Deterministic: fixed seeds and options (GENERATED)."""
    tool, opts, period = GENERATED[name]
    d = os.path.join(ctx["work"], "generated", name)
    if os.path.isdir(d):
        shutil.rmtree(d)
    os.makedirs(d)
    log = os.path.join(d, "log.txt")
    b = ctx["bin"]
    net = os.path.join(d, f"{name}.net.xml")
    run([os.path.join(b, tool), *opts, "--no-warnings", "-o", net], log)
    run([os.path.join(b, tool), *opts, "--tls.default-type", "actuated", "--no-warnings",
         "-o", os.path.join(d, "actuated.net.xml")], log)
    env = dict(os.environ, SUMO_HOME=os.path.dirname(ctx["tools"]))
    rou = os.path.join(d, f"{name}.rou.xml")
    run([ctx["python"], os.path.join(ctx["tools"], "randomTrips.py"), "-n", net,
         "-o", os.path.join(d, f"{name}.trips.xml"), "-r", rou, "-b", "0", "-e", "3600",
         "-p", str(period), "--fringe-factor", "max", "--seed", TRIPS_SEED, "--validate"], log, env=env)
    run([ctx["greenwave"], "sumo", "import", net, "--routes", rou, "--out",
         os.path.join(d, "imported"), "--name", name], log)
    return d


def one_generated(ctx, name, seed):
    """The programs on a netgenerate network, all on SUMO's own net (the generated one): the
    vehicles are Greenwave's for the seed (`greenwave sumo export --seed S` of the import; the
    edge ids are SUMO's), and Greenwave's plans run as programs of SUMO's own traffic lights
    (`greenwave sumo export --onto`; lights Greenwave imported without signals keep SUMO's)."""
    gw = ctx["greenwave"]
    g = os.path.join(ctx["work"], "generated", name)
    netfile = os.path.join(g, "imported", f"{name}.toml")
    net = os.path.join(g, f"{name}.net.xml")
    d = os.path.join(ctx["work"], name, f"seed{seed}")
    if os.path.isdir(d):
        shutil.rmtree(d)
    os.makedirs(d)
    log = os.path.join(d, "log.txt")
    exp = os.path.join(d, "export")
    run([gw, "sumo", "export", "--network", netfile, "--out", exp, "--seed", str(seed),
         "--no-netconvert", "--onto", net], log)
    # The routes and loops in SUMO's own edge and lane names (the import renames OSM's ids
    # and leaves sidewalks out of the lane numbers).
    rou = os.path.join(exp, f"{name}.onto.rou.xml")
    det = os.path.join(exp, f"{name}.onto.det.add.xml")
    e1 = os.path.join(exp, f"{name}.e1.out.xml")
    end_s = ctx["end"] or demand_end_s(rou) + DRAIN_S
    res = {}
    res["default"] = sumo_run(ctx, net, rou, [det], d, "default", seed, end_s)
    webster = os.path.join(d, "webster.add.xml")
    env = dict(os.environ, SUMO_HOME=os.path.dirname(ctx["tools"]))
    run([ctx["python"], os.path.join(ctx["tools"], "tlsCycleAdaptation.py"),
         "-n", net, "-r", rou, "-o", webster], log, env=env)
    res["webster"] = sumo_run(ctx, net, rou, [webster], d, "webster", seed, end_s)
    res["actuated"] = sumo_run(ctx, os.path.join(g, "actuated.net.xml"), rou, [], d, "actuated",
                               seed, end_s)
    counts = os.path.join(d, "counts.json")
    plans = os.path.join(d, "plans.toml")
    demand_end = 900.0 * -(-demand_end_s(rou) // 900)
    peak = os.path.join(d, "peak.e1.out.xml")
    peak_begin = peak_hour(e1, peak, demand_end)
    run([gw, "sumo", "counts", peak, "--network", netfile, "--out", counts], log)
    run([gw, "plan", "--network", netfile, "--counts", counts, "--out", plans, *ctx["plan_args"]], log)
    accepted = "# Validation: accepted" in open(plans).read()
    loop = os.path.join(d, "loop")
    run([gw, "sumo", "export", "--network", netfile, "--plan", plans, "--out", loop,
         "--seed", str(seed), "--no-netconvert", "--onto", net], log)
    res["greenwave"] = sumo_run(ctx, net, rou, [os.path.join(loop, f"{name}.onto.add.xml")],
                                d, "greenwave", seed, end_s)
    res["greenwave"]["plan_accepted_by_greenwave"] = accepted
    res["greenwave"]["counts_hour_begin_s"] = peak_begin
    # The same plans as Greenwave's isolated actuated operation, on the export's loops.
    loop_act = os.path.join(d, "loop_act")
    run([gw, "sumo", "export", "--network", netfile, "--plan", plans, "--out", loop_act,
         "--seed", str(seed), "--no-netconvert", "--onto", net, "--actuated", *ctx["export_args"]], log)
    res["greenwave_act"] = sumo_run(ctx, net, rou, [os.path.join(loop_act, f"{name}.onto.det.add.xml"),
                                                    os.path.join(loop_act, f"{name}.onto.add.xml")],
                                    d, "greenwave_act", seed, end_s)
    # The imported plans (SUMO's program made valid for Greenwave: longer clearances).
    res["shipped"] = sumo_run(ctx, net, rou, [os.path.join(exp, f"{name}.onto.add.xml")],
                              d, "shipped", seed, end_s)
    return res


def one(ctx, name, seed):
    """All five programs on one network and seed."""
    if name in GENERATED:
        return one_generated(ctx, name, seed)
    gw = ctx["greenwave"]
    netfile = os.path.join(ROOT, "intersections", "networks", f"{name}.toml")
    d = os.path.join(ctx["work"], name, f"seed{seed}")
    if os.path.isdir(d):
        shutil.rmtree(d)
    os.makedirs(d)
    log = os.path.join(d, "log.txt")
    exp = os.path.join(d, "export")
    run([gw, "sumo", "export", "--network", netfile, "--out", exp, "--seed", str(seed),
         "--netconvert", os.path.join(ctx["bin"], "netconvert"), *ctx["crossings"]], log)
    rou = os.path.join(exp, f"{name}.rou.xml")
    ours_net = os.path.join(exp, f"{name}.net.xml")
    det = os.path.join(exp, f"{name}.det.add.xml")
    e1 = os.path.join(exp, f"{name}.e1.out.xml")
    nc = os.path.join(ctx["bin"], "netconvert")
    default_net = os.path.join(d, "default.net.xml")
    actuated_net = os.path.join(d, "actuated.net.xml")
    run([nc, *netconvert_args(exp, name, default_net)], log)
    run([nc, *netconvert_args(exp, name, actuated_net, ["--tls.default-type", "actuated"])], log)
    end_s = ctx["end"] or demand_end_s(rou) + DRAIN_S
    res = {}
    # (a) SUMO's default program, with the loops that measure the counts for the loop.
    res["default"] = sumo_run(ctx, default_net, rou, [det], d, "default", seed, end_s)
    # (b) Webster by SUMO's own tool, on SUMO's default program.
    webster = os.path.join(d, "webster.add.xml")
    env = dict(os.environ, SUMO_HOME=os.path.dirname(ctx["tools"]))
    run([ctx["python"], os.path.join(ctx["tools"], "tlsCycleAdaptation.py"),
         "-n", default_net, "-r", rou, "-o", webster], log, env=env)
    res["webster"] = sumo_run(ctx, default_net, rou, [webster], d, "webster", seed, end_s)
    # (c) SUMO's actuated program.
    res["actuated"] = sumo_run(ctx, actuated_net, rou, [], d, "actuated", seed, end_s)
    # (d) The closed loop: SUMO's counts -> greenwave plan -> export -> SUMO.
    counts = os.path.join(d, "counts.json")
    plans = os.path.join(d, "plans.toml")
    last_depart = demand_end_s(rou)
    demand_end = 900.0 * -(-last_depart // 900)
    peak = os.path.join(d, "peak.e1.out.xml")
    peak_begin = peak_hour(e1, peak, demand_end)
    run([gw, "sumo", "counts", peak, "--network", netfile, "--out", counts], log)
    run([gw, "plan", "--network", netfile, "--counts", counts, "--out", plans, *ctx["plan_args"]], log)
    accepted = "# Validation: accepted" in open(plans).read()
    loop = os.path.join(d, "loop")
    run([gw, "sumo", "export", "--network", netfile, "--plan", plans, "--out", loop,
         "--seed", str(seed), "--no-netconvert", *ctx["crossings"]], log)
    res["greenwave"] = sumo_run(ctx, ours_net, rou, [os.path.join(loop, f"{name}.tls.add.xml")],
                                d, "greenwave", seed, end_s)
    res["greenwave"]["plan_accepted_by_greenwave"] = accepted
    res["greenwave"]["counts_hour_begin_s"] = peak_begin
    # (d') The same plans as Greenwave's isolated actuated operation, on the network's loops.
    loop_act = os.path.join(d, "loop_act")
    run([gw, "sumo", "export", "--network", netfile, "--plan", plans, "--out", loop_act,
         "--seed", str(seed), "--no-netconvert", "--actuated", *ctx["export_args"],
         *ctx["crossings"]], log)
    res["greenwave_act"] = sumo_run(ctx, ours_net, rou, [os.path.join(loop_act, f"{name}.det.add.xml"),
                                                         os.path.join(loop_act, f"{name}.tls.add.xml")],
                                    d, "greenwave_act", seed, end_s)
    # (e) The shipped plans in force.
    res["shipped"] = sumo_run(ctx, ours_net, rou, [os.path.join(exp, f"{name}.tls.add.xml")],
                              d, "shipped", seed, end_s)
    # (f) SUMO's Webster on our stages.
    webster_gw = os.path.join(d, "webster_gw.add.xml")
    run([ctx["python"], os.path.join(ctx["tools"], "tlsCycleAdaptation.py"),
         "-n", ours_net, "-r", rou, "-o", webster_gw], log, env=env)
    res["webster_gw"] = sumo_run(ctx, ours_net, rou, [webster_gw], d, "webster_gw", seed, end_s)
    return res


def summarise(name, seeds, per_seed):
    out = {"network": name, "seeds": seeds, "per_seed": per_seed, "programs": {}}
    for s in seeds:
        r = per_seed[str(s)]
        r["deployed"] = dict(r["greenwave"] if r["greenwave"]["plan_accepted_by_greenwave"] else r["shipped"])
    for p in ROWS:
        if p not in per_seed[str(seeds[0])]:
            continue
        rows = [per_seed[str(s)][p] for s in seeds]
        n = len(rows)
        out["programs"][p] = {
            "mean_time_loss_s": sum(r["mean_time_loss_s"] for r in rows) / n,
            "completed": sum(r["completed"] for r in rows) / n,
            "teleports": sum(r["teleports"] for r in rows),
        }
    for c in CANDIDATES:
        if c not in out["programs"]:
            continue
        g = out["programs"][c]["mean_time_loss_s"]
        red = lambda ref: (out["programs"][ref]["mean_time_loss_s"] - g) / out["programs"][ref]["mean_time_loss_s"] * 100
        vs_act = (g - out["programs"]["actuated"]["mean_time_loss_s"]) / out["programs"]["actuated"]["mean_time_loss_s"] * 100
        # "greenwave_vs" and "marks" are the fixed plan's (the keys of earlier runs).
        key = "" if c == "greenwave" else f"_{c}"
        out["greenwave_vs" + key] = {"default_reduction_pct": red("default"),
                                     "webster_reduction_pct": red("webster"),
                                     "actuated_diff_pct": vs_act}
        out["marks" + key] = {"default_25pct": red("default") >= 25.0,
                              "webster_10pct": red("webster") >= 10.0,
                              "actuated_within_5pct": vs_act <= 5.0}
    return out


def table(s):
    acc = sum(s["per_seed"][str(k)]["greenwave"]["plan_accepted_by_greenwave"] for k in s["seeds"])
    print(f"\n{s['network']}: seeds {','.join(map(str, s['seeds']))} (means over seeds; teleports summed); "
          f"Greenwave's check accepted the candidate for {acc} of {len(s['seeds'])} seeds")
    cands = [c for c in CANDIDATES if c in s["programs"]]
    print(f"  {'program':<13} {'time loss':>10} {'completed':>10} {'teleports':>9}   " + ", ".join(cands) + " against it")
    for p in ROWS:
        if p not in s["programs"]:
            continue
        r = s["programs"][p]
        diffs = []
        for c in cands:
            g = s["programs"][c]["mean_time_loss_s"]
            diffs.append("" if p in (c, "deployed") else f"{(g - r['mean_time_loss_s']) / r['mean_time_loss_s'] * 100:+.1f}%")
        print(f"  {p:<13} {r['mean_time_loss_s']:>9.1f}s {r['completed']:>10.0f} {r['teleports']:>9}   " + " ".join(f"{d:>8}" for d in diffs))
    ok = lambda b: "met" if b else "NOT met"
    for c in cands:
        key = "" if c == "greenwave" else f"_{c}"
        v, m = s["greenwave_vs" + key], s["marks" + key]
        print(f"  marks: {c} {-v['default_reduction_pct']:+.1f}% vs default (needs <= -25%: {ok(m['default_25pct'])}), "
              f"{-v['webster_reduction_pct']:+.1f}% vs webster (needs <= -10%: {ok(m['webster_10pct'])}), "
              f"{v['actuated_diff_pct']:+.1f}% vs actuated (needs <= +5%: {ok(m['actuated_within_5pct'])})")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--networks", default=",".join(NETWORKS), help="comma-separated (default: all four)")
    ap.add_argument("--seeds", default="3", help="N (seeds 1..N) or a comma-separated list (default 3)")
    ap.add_argument("--work", default="/tmp/greenwave_sumo_closed_loop", help="scratch folder for SUMO's files")
    ap.add_argument("--greenwave", default=os.path.join(ROOT, "target", "release", "greenwave"))
    ap.add_argument("--end", type=float, default=None, help="SUMO end time, s (default: last departure + 3600)")
    ap.add_argument("--jobs", type=int, default=1, help="network-seed pairs run at once (default 1)")
    ap.add_argument("--generate-only", action="store_true",
                    help="only generate and import the netgenerate networks named (into WORK/generated/NAME/imported)")
    ap.add_argument("--json", action="store_true", help="print a JSON array instead of tables")
    ap.add_argument("--plan-args", default="",
                    help="extra arguments for `greenwave plan`, space-separated (e.g. --price-permissive-lefts)")
    ap.add_argument("--export-args", default="",
                    help="extra arguments for the greenwave_act export, space-separated "
                         "(e.g. --skip-stages)")
    ap.add_argument("--crossings", action="store_true",
                    help="shipped networks: export their pedestrian groups as signalised crossings "
                         "(`greenwave sumo export --crossings`), so SUMO's own programs serve "
                         "pedestrians too")
    ap.add_argument("--table", metavar="JSON", help="print the tables of an earlier --json output and stop")
    a = ap.parse_args()
    if a.table:
        for s in json.load(open(a.table)):
            table(s)
        return
    seeds = list(range(1, int(a.seeds) + 1)) if a.seeds.isdigit() else [int(x) for x in a.seeds.split(",")]
    names = [n for n in a.networks.split(",") if n]
    for n in names:
        if n not in GENERATED and not os.path.isfile(os.path.join(ROOT, "intersections", "networks", f"{n}.toml")):
            die(f"no network intersections/networks/{n}.toml nor a generated one ({', '.join(GENERATED)})")
    if not os.access(a.greenwave, os.X_OK):
        die(f"{a.greenwave} not found: build it with `cargo build --release -p greenwave`")
    b, tools, py = find_sumo()
    ctx = {"bin": b, "tools": tools, "python": py, "greenwave": os.path.abspath(a.greenwave),
           "work": os.path.abspath(a.work), "end": a.end, "plan_args": a.plan_args.split(),
           "export_args": a.export_args.split(),
           "crossings": ["--crossings"] if a.crossings else []}
    if not a.json:
        print(f"SUMO: {b}/sumo; tools: {tools}; scratch: {ctx['work']}", flush=True)
    for n in names:
        if n in GENERATED:
            d = generate(ctx, n)
            if not a.json:
                print(f"  {n}: generated and imported in {d}", flush=True)
    if a.generate_only:
        return
    jobs = [(n, s) for n in names for s in seeds]
    results = {}
    with concurrent.futures.ThreadPoolExecutor(max_workers=max(1, a.jobs)) as ex:
        futs = {ex.submit(one, ctx, n, s): (n, s) for n, s in jobs}
        for f in concurrent.futures.as_completed(futs):
            n, s = futs[f]
            try:
                results[(n, s)] = f.result()
            except RuntimeError as e:
                die(f"{n} seed {s}: {e}")
            if not a.json:
                r = results[(n, s)]
                print(f"  {n} seed {s}: " + ", ".join(
                    f"{p} {r[p]['mean_time_loss_s']:.1f}s" for p in PROGRAMS if p in r), flush=True)
    summaries = [summarise(n, seeds, {str(s): results[(n, s)] for s in seeds}) for n in names]
    if a.json:
        print(json.dumps(summaries, indent=1))
    else:
        for s in summaries:
            table(s)


if __name__ == "__main__":
    main()
