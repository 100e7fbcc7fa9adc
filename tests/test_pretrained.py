"""pretrained.py: folder tokenizers equal to `transformers` on code, markers as new ids, a pretrained model whose
embedding and heads grow with them; model.py: activation checkpointing and the large preset.
The tokenizers and models are built and saved here; nothing is downloaded."""
import io
import shutil
import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import model  # noqa: E402
import pretrained  # noqa: E402
from problems import DataError  # noqa: E402
from tokenizer import TASK_MARKERS  # noqa: E402

transformers = pytest.importorskip("transformers")
tokenizers = pytest.importorskip("tokenizers")
pytestmark = pytest.mark.usefixtures("one_thread")

CORPUS = ["def f(x):\n\treturn x + 1\n", "for i in range(10):\n    print(i, 'héllo wörld ✓ 日本語 ½ Ⅻ')\n",
          "  a  =  b\n\n\n  # comment 42\n", "class Solution:\n    def go(self, nums: list[int]) -> int:\n        pass\n",
          "s = input().split()\nprint(' '.join(reversed(s)))  # it's done, they'll see\n"] * 20
# code with unicode, tabs, runs of spaces and newlines, contractions, numbers of other scripts, and the specials
TEXTS = ["def  g(\ty ):\n\n    return 'É' + \"日本\" \u00a0 x\u3000y\n",
         "if a:\n\t\tb = 1\t# tab\n        c = 2     \n\n\n",
         "print(f'{x!r:>10}')\r\n  # Ελληνικά, кириллица, عربى, 한국어, ½ Ⅻ ٣ 𝔘𝔫𝔦 😀\n",
         "it's we're I'LL they'd 'sx  \n   x", "   leading and trailing   ", "x</s>y <pad> <s>z <mask>\n",
         "<|code|>QUESTION:\nAdd.\n<|given_plan|>1. Add.\nANSWER:\n"]


@pytest.fixture(scope="module")
def bpe_folders(tmp_path_factory):
    """A CodeT5-style byte-level BPE (specials <pad> <s> </s> <unk> <mask> = 0..4) as vocab.json + merges.txt,
    and the same saved by transformers as tokenizer.json only."""
    plain = tmp_path_factory.mktemp("bpe-plain")
    trainer = tokenizers.ByteLevelBPETokenizer()
    trainer.train_from_iterator(CORPUS, vocab_size=420, min_frequency=1,
                                special_tokens=["<pad>", "<s>", "</s>", "<unk>", "<mask>"])
    trainer.save_model(str(plain))
    saved = tmp_path_factory.mktemp("bpe-json")
    transformers.RobertaTokenizer.from_pretrained(str(plain)).save_pretrained(str(saved))
    (saved / "vocab.json").unlink(missing_ok=True)
    (saved / "merges.txt").unlink(missing_ok=True)
    return plain, saved


@pytest.fixture(scope="module")
def spiece_folder(tmp_path_factory):
    """A T5-style sentencepiece model (pad 0, eos 1, unk 2, nmt normalisation) in a folder."""
    pytest.importorskip("google.protobuf", reason="transformers needs protobuf to read a sentencepiece model")
    import sentencepiece as spm
    folder = tmp_path_factory.mktemp("spiece")
    buffer = io.BytesIO()
    spm.SentencePieceTrainer.train(sentence_iterator=iter(CORPUS), model_writer=buffer, vocab_size=150,
                                   model_type="unigram", pad_id=0, eos_id=1, unk_id=2, bos_id=-1, minloglevel=2,
                                   hard_vocab_limit=False)
    (folder / "spiece.model").write_bytes(buffer.getvalue())
    return folder


def hf_ids(hf, text: str) -> list[int]:
    return hf(text, add_special_tokens=False)["input_ids"]


@pytest.mark.parametrize("kind", ["vocab+merges", "tokenizer.json"])
def test_byte_level_bpe_ids_equal_transformers_and_round_trip(bpe_folders, kind):
    folder = bpe_folders[0] if kind == "vocab+merges" else bpe_folders[1]
    ours = pretrained.load_folder_tokenizer(folder)
    hf = transformers.AutoTokenizer.from_pretrained(str(folder)) if kind == "tokenizer.json" else \
        transformers.RobertaTokenizer.from_pretrained(str(folder))
    assert (ours.pad_id, ours.eos_id) == (hf.pad_token_id, hf.eos_token_id) == (0, 2)
    base = len(hf)
    hf.add_tokens(list(TASK_MARKERS))        # the markers come after the vocabulary, as with transformers
    assert [ours.marker_id(m) for m in TASK_MARKERS] == hf.convert_tokens_to_ids(list(TASK_MARKERS)) \
        == [base, base + 1, base + 2]
    assert ours.vocab_size == base + 3
    for text in TEXTS + CORPUS[:5]:
        ids = ours.encode(text)
        assert ids == hf_ids(hf, text), text
        if "<" not in text:                        # specials are left out when decoding, as model output needs
            assert ours.decode(ids) == text
    assert ours.decode(ours.encode("<|code|>x = 1\n</s>")) == "<|code|>x = 1\n"


def test_bpe_pre_tokenisation_equals_the_regex_module_on_every_category():
    regex = pytest.importorskip("regex")
    reference = regex.compile(r"""'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+""")
    # one character of every general category and every whitespace there is, in runs and next to letters
    import unicodedata
    picks = {}
    for code in range(0x30000):
        picks.setdefault(unicodedata.category(chr(code)), []).append(chr(code))
    sample = "".join(chars[len(chars) // 2] + chars[0] + " " + chars[-1] * 2 for chars in picks.values())
    spaces = "\t\n\x0b\x0c\r \x1c\x1d\x1e\x1f\x85\xa0\u1680\u2000\u200a\u2028\u2029\u202f\u205f\u3000"
    sample += "".join(f"a{s}{s}b{s}1 {s}" for s in spaces)
    assert pretrained.gpt2_pattern().findall(sample) == reference.findall(sample)


def test_sentencepiece_ids_equal_transformers_t5(spiece_folder):
    ours = pretrained.load_folder_tokenizer(spiece_folder)
    hf = transformers.T5Tokenizer.from_pretrained(str(spiece_folder))
    size = ours.sp.get_piece_size()
    assert (ours.pad_id, ours.eos_id) == (hf.pad_token_id, hf.eos_token_id) == (0, 1)
    assert ours.encode("<extra_id_0>") == [hf.convert_tokens_to_ids("<extra_id_0>")] == [size + 99]
    hf.add_tokens(list(TASK_MARKERS))
    assert [ours.marker_id(m) for m in TASK_MARKERS] == [size + 100, size + 101, size + 102]
    for text in TEXTS + CORPUS[:5] + ["a <extra_id_3> b<extra_id_0>c"]:
        assert ours.encode(text) == hf_ids(hf, text), text
    # T5's normaliser folds tabs and newlines to spaces: only words survive a round trip
    assert ours.decode(ours.encode("x = 1\n\ty = 2")) == "x = 1 y = 2"


def test_a_folder_without_a_tokenizer_is_named(tmp_path):
    with pytest.raises(DataError, match=str(tmp_path)):
        pretrained.load_folder_tokenizer(tmp_path)


def tiny_t5_folder(tokenizer_folder: Path, dest: Path, vocab_size: int, pad: int, eos: int) -> Path:
    shutil.copytree(tokenizer_folder, dest)
    config = transformers.T5Config(vocab_size=vocab_size, d_model=32, d_kv=8, d_ff=64, num_layers=2, num_heads=2,
                                   feed_forward_proj="relu", tie_word_embeddings=True, dropout_rate=0.0,
                                   pad_token_id=pad, eos_token_id=eos, decoder_start_token_id=pad)
    torch.manual_seed(0)
    transformers.T5ForConditionalGeneration(config).eval().save_pretrained(str(dest))
    return dest


def test_init_model_grows_embedding_and_both_heads_and_keeps_pretrained_logits(bpe_folders, tmp_path):
    tokenizer = pretrained.load_folder_tokenizer(bpe_folders[0])
    base = tokenizer.vocab_size - len(TASK_MARKERS)
    folder = tiny_t5_folder(bpe_folders[0], tmp_path / "tiny", base, tokenizer.pad_id, tokenizer.eos_id)
    hf = transformers.T5ForConditionalGeneration.from_pretrained(str(folder)).eval()
    net = pretrained.init_model(folder, tokenizer, dropout=0.0, quiet=True).eval()
    assert net.embedding.weight.shape[0] == net.plan_head.weight.shape[0] == net.config.vocab_size == tokenizer.vocab_size
    assert torch.equal(net.embedding.weight[:base], hf.shared.weight)
    assert torch.equal(net.plan_head.weight, net.embedding.weight)          # the plan head starts as the code head
    assert torch.allclose(net.embedding.weight[base:], hf.shared.weight.mean(0).expand(3, -1))
    source = torch.tensor([tokenizer.encode("def f(x):\n\treturn x\n")])
    target = torch.tensor([tokenizer.encode("print(1)\n")])
    with torch.no_grad():
        ours, _ = net(source, torch.ones_like(source), labels=target)
        theirs = hf(input_ids=source, attention_mask=torch.ones_like(source), labels=target).logits
    assert torch.allclose(ours[..., :base], theirs, atol=1e-4)
    # a marker in the input is a token the model knows now
    marked = torch.tensor([tokenizer.encode("<|code|>x")])
    assert marked[0, 0] == tokenizer.marker_id("<|code|>")
    net(marked, torch.ones_like(marked), labels=target)


def test_init_model_refuses_a_tokenizer_that_disagrees_with_the_config(bpe_folders, tmp_path):
    tokenizer = pretrained.load_folder_tokenizer(bpe_folders[0])
    folder = tiny_t5_folder(bpe_folders[0], tmp_path / "odd", tokenizer.vocab_size, pad=tokenizer.pad_id, eos=1)
    with pytest.raises(model.CheckpointError, match="eos"):
        pretrained.init_model(folder, tokenizer, dropout=0.0, quiet=True)


# ----------------------------------------------------------------------------- model.py: checkpointing, presets

def test_gradient_checkpointing_gives_the_same_gradients():
    config = model.ModelConfig(vocab_size=60, d_model=32, d_kv=8, d_ff=64, num_heads=2, num_layers=2,
                               num_decoder_layers=2, dropout=0.1)     # dropout too: the masks must be replayed

    def gradients(checkpointing: bool):
        torch.manual_seed(0)
        net = model.CodePlanModel(config, quiet=True).train()
        net.gradient_checkpointing(checkpointing)
        source, target = torch.randint(2, 60, (3, 9)), torch.randint(2, 60, (3, 6))
        mask = torch.ones_like(source)
        mask[0, 6:] = 0
        torch.manual_seed(1)
        _, code_loss = net(source, mask, labels=target, head="code")
        _, plan_loss = net(source, mask, labels=target, head="plan")
        (code_loss + plan_loss).backward()
        return {n: p.grad for n, p in net.named_parameters()}

    plain, checkpointed = gradients(False), gradients(True)
    assert plain.keys() == checkpointed.keys() and all(g is not None for g in plain.values())
    for name in plain:
        assert torch.allclose(plain[name], checkpointed[name], atol=1e-6, rtol=1e-5), name


def test_large_preset_is_the_paper_size():
    """CodeT5-large (770M with its 32,100-token vocabulary) has T5-large's shape; counted on the meta device."""
    with torch.device("meta"):
        net = model.CodePlanModel(model.ModelConfig.preset("large", vocab_size=32100), quiet=True)
        hf = transformers.T5ForConditionalGeneration(transformers.T5Config(
            vocab_size=32100, d_model=1024, d_kv=64, d_ff=4096, num_layers=24, num_heads=16, feed_forward_proj="relu"))
    hf_count = sum(p.numel() for p in hf.parameters())
    plan_head = 32100 * 1024
    assert net.num_parameters() - plan_head == hf_count
    assert 735e6 < hf_count < 740e6 and 765e6 < net.num_parameters() < 775e6


def test_a_forced_prefix_is_continued_greedily_and_neither_returned_nor_scored():
    torch.manual_seed(0)
    net = model.CodePlanModel(model.ModelConfig(vocab_size=40, d_model=32, d_kv=8, d_ff=64, num_heads=2, num_layers=1,
                                                num_decoder_layers=1, dropout=0.0), quiet=True).eval()
    source = torch.randint(3, 40, (2, 5))
    mask = torch.ones_like(source)
    prefix = torch.tensor([[7, 8, 9], [11, 0, 0]])         # row 1 has a shorter prefix, padded with pad (0)
    tokens, logprobs = net.generate(source, mask, max_new_tokens=4, prefix=prefix, stop_at_eos=False)
    for b, forced in enumerate(([7, 8, 9], [11])):
        # the same continuation as teacher-forcing the prefix and decoding greedily by hand
        decoded, total = list(forced), 0.0
        for _ in range(len(tokens[b])):
            inputs = torch.tensor([[net.config.pad_id] + decoded])
            with torch.no_grad():
                logits, _ = net(source[b:b + 1], mask[b:b + 1], decoder_input_ids=inputs)
            step = torch.log_softmax(logits[0, -1].float(), dim=-1)
            decoded.append(int(step.argmax()))
            total += float(step.max())
        assert tokens[b] == decoded[len(forced):]
        assert len(tokens[b]) == 4 + 3 - len(forced)
        assert logprobs[b].item() == pytest.approx(total, abs=1e-4)


def test_init_folder_is_checked_before_use_and_errors_name_it(bpe_folders, tmp_path):
    tokenizer = pretrained.load_folder_tokenizer(bpe_folders[0])
    good = tiny_t5_folder(bpe_folders[0], tmp_path / "good", tokenizer.vocab_size, tokenizer.pad_id, tokenizer.eos_id)
    pretrained.check_folder(good)

    def broken(name: str, change) -> Path:
        folder = tmp_path / name
        shutil.copytree(good, folder)
        change(folder)
        return folder
    weights = good / "model.safetensors"
    cases = [(tmp_path / "absent", "no such folder"),
             (broken("empty", lambda f: [p.unlink() for p in f.iterdir()]), "no config.json"),
             (broken("garbage", lambda f: (f / "config.json").write_text("{not json")), "config.json: not readable as JSON"),
             (broken("keyless", lambda f: (f / "config.json").write_text('{"vocab_size": 10}')), "config.json has no 'd_model'"),
             (broken("unweighted", lambda f: (f / "model.safetensors").unlink()), "no model.safetensors or pytorch_model.bin"),
             (broken("torn", lambda f: (f / "model.safetensors").write_bytes(weights.read_bytes()[:-10])),
              "model.safetensors: not a complete safetensors file"),
             (broken("noise", lambda f: (f / "model.safetensors").write_bytes(b"\x00garbage" * 64)),
              "model.safetensors: not a complete safetensors file"),
             (broken("untokenized", lambda f: [(f / n).unlink(missing_ok=True) for n in pretrained.TOKENIZER_FILES]),
              "no tokenizer found")]
    for folder, message in cases:
        with pytest.raises(DataError) as error:
            pretrained.check_folder(folder)
        assert str(error.value).startswith(f"--init {folder}: ") and message in str(error.value), str(error.value)
    bin_folder = broken("bin", lambda f: (f / "model.safetensors").unlink())
    torch.save({"x": torch.zeros(1)}, bin_folder / "pytorch_model.bin")
    pretrained.check_folder(bin_folder)
    (bin_folder / "pytorch_model.bin").write_bytes(b"not a zip")
    with pytest.raises(DataError, match="pytorch_model.bin: not a complete torch.save file"):
        pretrained.check_folder(bin_folder)
