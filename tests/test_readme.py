"""The README's results lines and the results page are generated from the committed records, never typed in."""

import importlib.util
import json
import shutil
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
RECIPES_JSON = REPO / "bench" / "robust_recipe" / "recipes.json"  # the shipped recipe's records
SHIPPED = REPO / "models" / "esc50-mel-cnn"


def _recipes():
    """bench/recipes.py as a module (it is a script, not part of the package)."""
    spec = importlib.util.spec_from_file_location("bench_recipes", REPO / "bench" / "recipes.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_readme_results_lines_are_what_bench_recipes_computes():
    expected = _recipes().readme_lines(json.loads(RECIPES_JSON.read_text()))
    results = (REPO / "README.md").read_text().split("\n## Results\n", 1)[1].splitlines()
    missing = [line for line in expected if line not in results]
    assert len(expected) == 3 and not missing, (
        "README.md's results lines differ from what `python bench/recipes.py --from-json "
        "bench/robust_recipe/recipes.json --print-readme-lines` prints; expected:\n" + "\n".join(missing)
    )


def test_the_records_behind_the_readme_lines_are_the_shipped_models():
    """The fold-5 trainings and the CV in bench/robust_recipe/recipes.json are the shipped model's own reports."""
    document = json.loads(RECIPES_JSON.read_text())
    (tested,) = [row for row in document["candidates"] if row["sees_test_fold"] and row["device"] == "CPU"]
    first, *others = tested["per_seed"]
    metrics = json.loads((SHIPPED / "metrics.json").read_text())
    repeated = json.loads((SHIPPED / "repeated_runs.json").read_text())["runs"]
    assert (first["accuracy"], first["f1"]) == (metrics["accuracy"], metrics["f1"])  # the first training ships
    assert [(run["seed"], run["accuracy"], run["f1"]) for run in others] == [
        (run["seed"], run["accuracy"], run["f1"]) for run in repeated
    ]
    cv = json.loads((SHIPPED / "cv_results.json").read_text())
    assert document["cross_validation"]["summary"] == cv["summary"]


def test_results_page_blocks_are_what_bench_recipes_writes_from_the_committed_json(tmp_path):
    """docs/results.md's generated blocks, rewritten from the recipes.json of bench/robust_recipe, bench and bench/gpu,
    are unchanged (a hand edit inside a block, or a JSON changed without regenerating the page, fails here)."""
    recipes = _recipes()
    page = tmp_path / "docs" / "results.md"
    page.parent.mkdir()
    shutil.copy(REPO / "docs" / "results.md", page)
    blocks = {"bench/robust_recipe": ["--page-block", "ft-pair"], "bench": [], "bench/gpu": ["--page-block", "gpu",
              "--page-brief"]}  # fmt: skip
    for folder, options in blocks.items():  # the records and the plots beside them (the page links the plots)
        (tmp_path / folder).mkdir(parents=True, exist_ok=True)
        for name in ("recipes.json", recipes.INNER_PLOT, recipes.SPLIT_PLOT):
            if (REPO / folder / name).is_file():
                shutil.copy(REPO / folder / name, tmp_path / folder / name)
        recipes.main(["--from-json", str(tmp_path / folder / "recipes.json"), "--page", str(page), *options])
    assert page.read_text() == (REPO / "docs" / "results.md").read_text()


def test_the_readme_is_short_with_its_four_sections_and_every_docs_page_is_under_10k():
    """README.md is for people: at most 6000 characters, with Setup, Train, Production preparation and Infer in this
    order; the details live in docs/, one page per subject, each under 10,000 characters."""
    readme = (REPO / "README.md").read_text()
    assert len(readme) <= 6000, len(readme)
    headings = [line[3:].strip() for line in readme.splitlines() if line.startswith("## ")]
    sections = ["Setup", "Train", "Production preparation", "Infer"]
    assert [heading for heading in headings if heading in sections] == sections, headings
    pages = sorted((REPO / "docs").glob("*.md"))
    assert pages and {page.name: len(page.read_text()) for page in pages if len(page.read_text()) >= 10_000} == {}
