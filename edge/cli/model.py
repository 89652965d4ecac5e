"""``edge model``: list, inspect, verify, run and benchmark the shipped models."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from edge.cli.common import edge_errors, print_json
from edge.errors import BackendUnavailableError, ModelError


@click.group("model")
def model() -> None:
    """Models: manifests, integrity, inference and latency."""


def _root(models_dir: str | None) -> Path:
    from edge.inference import default_models_dir

    return Path(models_dir) if models_dir else default_models_dir()


_dir_option = click.option("--models-dir", default=None,
                           help="Models directory (default: EDGE_MODELS_DIR or models/).")


@model.command("list")
@_dir_option
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@edge_errors
def list_cmd(models_dir: str | None, as_json: bool) -> None:
    """The models under the models directory, with their files."""
    from edge.inference import available_backends, list_models

    mans = list_models(_root(models_dir))
    rows: list[dict[str, Any]] = [{"name": m.name, "version": m.version, "task": m.task,
             "classes": list(m.classes), "directory": str(m.directory),
             "files": [{"file": f.path.name, "format": f.format, "precision": f.precision,
                        "bytes": f.bytes} for f in m.files]} for m in mans]
    if as_json:
        print_json({"models": rows, "backends": available_backends()})
        return
    if not rows:
        click.echo(f"no models under {_root(models_dir)}")
    for r in rows:
        click.echo(f"{r['name']} {r['version']}: {r['task']}")
        for f in r["files"]:
            click.echo(f"    {f['file']:28} {f['format']:7} {f['precision']:5} {f['bytes']:>8} B")
    for name, ver in available_backends().items():
        click.echo(f"backend {name}: {ver or 'not installed'}")


@model.command("inspect")
@click.argument("file", type=click.Path(exists=True))
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@edge_errors
def inspect_cmd(file: str, as_json: bool) -> None:
    """Manifest facts of FILE (a model file or a model directory) and its tensors."""
    import numpy as np

    from edge.inference import load_model

    m = load_model(file)
    b = m.backend
    info: dict[str, Any] = {
        "name": m.name, "version": m.version, "task": m.manifest.task,
        "file": str(m.file.path), "format": m.format, "precision": m.precision,
        "backend": m.backend_name, "sha256": m.file.sha256, "bytes": m.file.path.stat().st_size,
        "input": {"features": m.spec.features, "n_features": m.spec.n_features,
                  "sample_rate_hz": m.spec.sample_rate_hz,
                  "min_sample_rate_hz": m.spec.min_sample_rate_hz, "window": m.spec.window},
        "classes": list(m.classes), "thresholds": m.manifest.thresholds,
    }
    t_in, t_out = getattr(b, "input", None), getattr(b, "output", None)
    if t_in is not None and t_out is not None:  # TFLite: int8 tensors and their scales
        info["tensors"] = {"input_dtype": str(np.dtype(t_in["dtype"])),
                           "input_quantization": list(t_in["quantization"]),
                           "output_quantization": list(t_out["quantization"])}
    if as_json:
        print_json(info)
        return
    for k, v in info.items():
        click.echo(f"{k:10} {v}")


@model.command("verify")
@click.argument("directory", type=click.Path(exists=True, file_okay=False), required=False)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@edge_errors
def verify_cmd(directory: str | None, as_json: bool) -> None:
    """Check every model file: sha256, that it runs, and its decisions on the golden rows.

    Each file runs on its manifest's golden rows (real features with the fp32
    reference decisions) on this machine's runtime and CPU; a file below the
    manifest's agreement (99.5 %) fails. Run it on every new gateway.
    """
    from edge.inference import list_models, load_manifest, load_model
    from edge.inference.golden import check_model, load_golden
    from edge.inference.manifest import MANIFEST_NAME

    root = Path(directory) if directory else _root(None)
    mans = [load_manifest(root)] if (root / MANIFEST_NAME).exists() else list_models(root)
    if not mans:
        raise ModelError(f"{root}: no {MANIFEST_NAME} here or in its subdirectories")
    rows: list[dict[str, Any]] = []
    reasons: list[str] = []
    for man in mans:
        golden = load_golden(man)
        for f in man.files:
            row: dict[str, Any] = {"model": man.name, "version": man.version,
                                   "file": f.path.name, "format": f.format,
                                   "precision": f.precision}
            try:
                m = load_model(f.path)
                res = check_model(m, golden)
                if res is None:
                    row["status"], row["detail"] = "ok", "no golden rows in the manifest"
                else:
                    row["golden"] = res.to_dict()
                    row["status"] = "ok" if res.ok else "FAILED"
                    row["detail"] = res.reason(f.path.name)
                    if not res.ok:
                        reasons.append(row["detail"])
            except BackendUnavailableError as exc:
                row["status"], row["detail"] = "unavailable", str(exc)
            except ModelError as exc:
                row["status"], row["detail"] = "FAILED", str(exc)
                reasons.append(str(exc))
            rows.append(row)
    if as_json:
        print_json({"ok": not reasons, "machine": _machine(), "files": rows})
    else:
        click.echo(f"on {_machine()['cpu']}")
        for r in rows:
            g = r.get("golden")
            figs = (f"agree {g['agreement']:.4f} max|dp| {g['max_prob_diff']:.3f} "
                    f"({g['rows']} rows)") if g else r.get("detail", "")
            click.echo(f"{r['status']:11} {r['model']} {r['version']} {r['file']:24} {figs}")
    if reasons:
        more = f" (and {len(reasons) - 1} more)" if len(reasons) > 1 else ""
        raise click.ClickException(reasons[0] + more)


def _machine() -> dict[str, str]:
    from edge.inference.cpu import cpu_summary

    return cpu_summary()


@model.command("run")
@click.argument("file", type=click.Path(exists=True))
@click.option("--input", "input_path", required=True,
              help="Feature rows (.npy or .csv), or a WFDB record / CSV ECG with --fs.")
@click.option("--fs", type=float, default=None, help="Sample rate of a CSV ECG input.")
@click.option("--backend", default=None, help="onnxruntime or litert (default: from FILE).")
@click.option("--precision", default="auto", show_default=True,
              help="With a model directory: int8, fp32 or auto (the manifest's default).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@edge_errors
def run_cmd(file: str, input_path: str, fs: float | None, backend: str | None, precision: str,
            as_json: bool) -> None:
    """Run FILE on --input and print each row's class probabilities and decision."""
    import numpy as np

    from edge.inference import load_model
    from edge.inference.inputs import features_from_signal, load_feature_rows

    m = load_model(file, backend=backend, precision=precision)
    p = Path(input_path)
    positions: np.ndarray | None = None
    if p.suffix in (".npy",) or (p.suffix == ".csv" and fs is None):
        x = load_feature_rows(p, m.spec)
    else:
        from edge.trace.recordings import load_csv, load_wfdb

        rec = load_csv(p, fs) if p.suffix == ".csv" and fs else load_wfdb(p, annotator=None)
        x, positions = features_from_signal(m.spec, rec.signal[:, 0], rec.fs)
    probs = m.run(x)
    decisions = [m.classes[int(i)] for i in np.argmax(probs, axis=1)] if len(probs) else []
    counts = {c: decisions.count(c) for c in m.classes}
    if as_json:
        print_json({"model": m.name, "version": m.version, "backend": m.backend_name,
                    "precision": m.precision, "rows": len(x), "counts": counts,
                    "outputs": [{"index": None if positions is None else int(positions[i]),
                                 "probabilities": [round(float(v), 4) for v in probs[i]],
                                 "decision": decisions[i]} for i in range(len(x))]})
        return
    click.echo(f"{m!r}: {len(x)} rows; decisions {counts}")
    for i in range(min(len(x), 20)):
        where = "" if positions is None else f" @ sample {int(positions[i])}"
        click.echo(f"  {i:4d}{where}: {decisions[i]} "
                   + " ".join(f"{c}={v:.3f}" for c, v in zip(m.classes, probs[i], strict=True)))
    if len(x) > 20:
        click.echo(f"  ... {len(x) - 20} more (use --json)")


@model.command("bench")
@_dir_option
@click.option("--calls", type=int, default=1000, show_default=True, help="Calls per figure.")
@click.option("--batch", "batches", type=int, multiple=True, default=(1, 32), show_default=True,
              help="Batch sizes to measure (repeatable).")
@click.option("--threads", type=int, default=1, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@edge_errors
def bench_cmd(models_dir: str | None, calls: int, batches: tuple[int, ...], threads: int,
              as_json: bool) -> None:
    """Per-call latency p50/p99 per model, backend and precision, vs a bare runtime loop."""
    from edge.inference.bench import bench_all

    res = bench_all(_root(models_dir), tuple(batches), calls, threads)
    if as_json:
        print_json(res)
        return
    m = res["machine"]
    click.echo(f"python {m['python']} {m['arch']}, threads {threads}, {calls} calls each")
    click.echo(f"{'model':10} {'format':7} {'prec':5} {'bytes':>7} {'batch':>5} "
               f"{'p50 us':>8} {'p99 us':>8} {'bare p50':>9} {'ratio':>6}")
    for r in res["results"]:
        for b, v in r["batches"].items():
            click.echo(f"{r['model']:10} {r['format']:7} {r['precision']:5} {r['bytes']:7d} "
                       f"{b:>5} {v['api']['p50_us']:8.1f} {v['api']['p99_us']:8.1f} "
                       f"{v['bare']['p50_us']:9.1f} {v['ratio_p50']:6.2f}")
    for name, why in res["unavailable"].items():
        click.echo(f"{name}: unavailable ({why})")
    for lb in res["event_loop"]:
        click.echo(f"event loop stall, {lb['model']}: inline max {lb['inline']['max_us']} us, "
                   f"executor max {lb['executor']['max_us']} us")
