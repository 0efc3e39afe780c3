"""DE-COP: the quiz, the scores, the input checks, and the white-box path against a slow reference."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from llm_mia.errors import InputError
from llm_mia.methods.decop import LETTERS, QuizPassage, orderings, passage_scores, quizzes, read_quiz_passages

EXAMPLE = Path(__file__).parents[1] / "llm_mia" / "data" / "decop_example.jsonl"


def test_every_ordering_puts_the_verbatim_passage_under_each_letter_equally_often() -> None:
    passage = QuizPassage(id="p", text="original", paraphrases=("one", "two", "three"))
    asked = quizzes(passage, "the work")
    assert len(asked) == 24 and len(set(prompt for prompt, _ in asked)) == 24
    assert [sum(answer == i for _, answer in asked) for i in range(4)] == [6, 6, 6, 6]
    for prompt, answer in asked:  # the letter recorded as right is the one in front of the original
        assert f"{LETTERS[answer]}. original\n" in prompt
    assert sorted(orderings()) == orderings()


def test_scores_are_the_mean_verbatim_probability_and_the_share_answered_right() -> None:
    # a model that always says A: probability 1/4 of the orderings right, whatever the passage
    always_a = np.log(np.tile([0.97, 0.01, 0.01, 0.01], (24, 1)))
    answers = [order.index(0) for order in orderings()]
    score, accuracy = passage_scores(always_a, answers)
    assert accuracy == 0.25 and score == pytest.approx(0.25)
    # a model that always finds the original
    knows = np.full((24, 4), np.log(0.1))
    knows[np.arange(24), answers] = np.log(0.7)
    assert passage_scores(knows, answers) == (pytest.approx(0.7), 1.0)


def test_the_quiz_reader_names_the_line_and_the_fix(tmp_path: Path) -> None:
    good = {"id": "a", "text": "x y z", "paraphrases": ["x", "y", "z"]}
    path = tmp_path / "quiz.jsonl"
    path.write_text(json.dumps(good) + "\n" + json.dumps({**good, "id": "b", "paraphrases": ["x", "y"]}) + "\n")
    with pytest.raises(InputError, match=r"quiz.jsonl:2: 'paraphrases' must be a list of 3"):
        read_quiz_passages(path)
    path.write_text(json.dumps({**good, "paraphrases": ["x y z", "y", "z"]}) + "\n")
    with pytest.raises(InputError, match=r"quiz.jsonl:1: a paraphrase equals the passage"):
        read_quiz_passages(path)
    path.write_text(json.dumps(good) + "\n" + json.dumps(good) + "\n")
    with pytest.raises(InputError, match="id 'a' appears twice"):
        read_quiz_passages(path)
    assert len(read_quiz_passages(EXAMPLE)) == 8


@pytest.mark.slow
def test_white_box_decop_matches_a_slow_reference_on_the_packaged_model(smollm2, tmp_path: Path) -> None:
    """The reference: one unbatched forward pass per prompt, float64 log-softmax of the last logits."""
    from llm_mia.cli import main

    passages = read_quiz_passages(EXAMPLE)[:2]
    subject = "an English text"
    quiz = tmp_path / "quiz.jsonl"
    quiz.write_text("".join(line + "\n" for line in EXAMPLE.read_text().splitlines()[:2]))
    output = tmp_path / "decop.jsonl"
    argv = ["decop", "--input", str(quiz), "--subject", subject, "--device", "cpu", "--batch-size", "5",
            "--output", str(output)]  # fmt: skip
    assert main(argv) == 0
    rows = [json.loads(line) for line in output.read_text().splitlines()]
    spaced = [smollm2.tokenizer.encode(f" {letter}", add_special_tokens=False) for letter in "ABCD"]
    assert all(len(ids) == 1 for ids in spaced)  # SmolLM2 writes " A" as one token: the answer read
    letters = [ids[0] for ids in spaced]
    record = json.loads(output.with_name(output.name + ".run.json").read_text())
    assert record["models"]["target"]["answer_tokens"] == letters
    for passage, row in zip(passages, rows, strict=True):
        probabilities, right = [], []
        for prompt, answer in quizzes(passage, subject):
            ids = smollm2.tokenizer(prompt, add_special_tokens=False)["input_ids"]
            with torch.no_grad():
                logits = smollm2.model(input_ids=torch.tensor([ids])).logits[0, -1].double()
            letter_logprobs = torch.log_softmax(logits, dim=-1)[letters]
            p = torch.softmax(letter_logprobs, dim=-1)
            probabilities.append(float(p[answer]))
            right.append(int(p.argmax()) == answer)
        assert row["status"] == "ok" and row["orderings_answered"] == 24
        assert row["decop"] == pytest.approx(np.mean(probabilities), abs=1e-5)
        assert row["decop_accuracy"] == pytest.approx(np.mean(right))
    record = json.loads(Path(f"{output}.run.json").read_text())
    assert record["models"]["target"]["answer_tokens"] == letters and record["settings"]["subject"] == subject


def test_model_written_paraphrases_are_kept_only_when_usable() -> None:
    from llm_mia.methods.paraphrase import MAX_TRIES, write_paraphrases

    passage = QuizPassage(id="p", text="the cat sat on the mat all day long", paraphrases=())
    offered = {
        0: "the cat sat on the mat all day long",  # a copy
        1: '"a cat rested on the rug for the whole day"\n\nHope that helps!',  # kept, trimmed
        2: "a cat rested on the rug for the whole day",  # a repeat
        3: "cat",  # far too short
        4: "all day long the cat stayed sitting on the mat",
        5: "the mat held a sitting cat from morning to night",
    }
    (done,), seeds = write_paraphrases([passage], lambda text, seed: offered.get(seed, ""))
    assert done.paraphrases == (
        "a cat rested on the rug for the whole day",
        "all day long the cat stayed sitting on the mat",
        "the mat held a sitting cat from morning to night",
    )
    assert seeds == {"p": [1, 4, 5]}
    with pytest.raises(InputError, match=rf"passage 'p': .* 1 usable paraphrase\(s\) in {MAX_TRIES} tries"):
        write_paraphrases([passage], lambda text, seed: offered[1] if seed == 1 else offered[0])


@pytest.mark.slow
def test_paraphrases_written_by_the_packaged_model_are_stored_and_give_the_same_quiz_again(tmp_path: Path) -> None:
    from llm_mia.cli import main

    row = json.loads(EXAMPLE.read_text().splitlines()[4])  # a passage written in 2026
    del row["paraphrases"]
    given = tmp_path / "passages.jsonl"
    given.write_text(json.dumps(row) + "\n")
    written, first, again = tmp_path / "quiz.jsonl", tmp_path / "first.jsonl", tmp_path / "again.jsonl"
    common = ["--subject", "an English text", "--device", "cpu"]
    argv = ["decop", "--input", str(given), "--paraphrase-model", "smollm2-135m", "--paraphrases-out", str(written),
            "--output", str(first), *common]  # fmt: skip
    assert main(argv) == 0
    (passage,) = read_quiz_passages(written)
    assert len(set(passage.paraphrases)) == 3 and row["text"] not in passage.paraphrases
    record = json.loads(Path(f"{first}.run.json").read_text())
    assert (
        record["paraphrases"]["seeds"][row["id"]] and record["paraphrases"]["model"]["asked_through"] == "chat template"
    )
    assert main(["decop", "--input", str(written), "--output", str(again), *common]) == 0
    assert json.loads(first.read_text())["decop"] == json.loads(again.read_text())["decop"]
