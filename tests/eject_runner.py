"""Runs ejected modules where archspec cannot be imported (tests/test_eject.py starts
it with `python -I`): builds each on the meta device for its state-dict layout and,
where asked, for real with given weights on a given input.

    python -I tests/eject_runner.py JOBS.json

JOBS.json lists {"module": path, "out": path, "weights": path|null, "input": path|null,
"train": bool, "seeded": [build() keyword arguments, ...]}; each job's results are saved
to its "out" with torch.save. For each entry of "seeded", the state dict of build(**it)
after torch.manual_seed(0): what the ejected init_weights drew.
"""
import sys

sys.modules["archspec"] = None  # an `import archspec` anywhere below raises ImportError

import importlib.util  # noqa: E402
import json  # noqa: E402

import torch  # noqa: E402


def load(path: str, name: str):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def run(job: dict, index: int) -> dict:
    module = load(job["module"], f"ejected_{index}")
    with torch.device("meta"):
        net = module.build()
    result = {"layout": [(k, tuple(v.shape)) for k, v in net.state_dict().items()]}
    result["seeded"] = []
    for kwargs in job.get("seeded", ()):
        torch.manual_seed(0)
        result["seeded"].append(module.build(**kwargs).state_dict())
    if job.get("weights"):
        torch.manual_seed(0)
        net = module.build()
        net.load_state_dict(torch.load(job["weights"]), strict=True)
        x = torch.load(job["input"])
        with torch.no_grad():
            result["eval"] = net.eval()(x)
            if job.get("train"):
                result["train"] = net.train()(x)
    return result


def main() -> None:
    torch.set_num_threads(1)  # small forwards: threads cost more than they give on a small CI machine
    try:
        import archspec  # noqa: F401
    except ImportError:
        pass
    else:
        raise SystemExit("archspec is importable here; the check would prove nothing")
    with open(sys.argv[1]) as f:
        jobs = json.load(f)
    for index, job in enumerate(jobs):
        torch.save(run(job, index), job["out"])
    print(f"ran {len(jobs)} ejected modules without archspec")


if __name__ == "__main__":
    main()
