"""One search method on one prepared vector set, in its own process (so its peak memory is its own).

    python search_one.py METHOD FOLDER [OPTION]

FOLDER holds what ``benchmarks/search.py`` prepared: ``vectors.parquet`` (a vizcli embed output),
``vectors.npy`` (the same float32 unit vectors, for the peers), ``queries.npy`` and ``truth.npy``
(exact top-10 rows). Prints one JSON object: build seconds, single-query latencies (p50/p99 ms),
queries per second in one batch, recall@10 against exact, and memory (peak RSS, and its growth
over the process after imports).
"""

import json
import os
import struct
import sys
import time

import numpy as np

K = 10


def batch_queries(queries, folder):
    """The queries timed as one batch: all 1,000 up to 200,000 vectors, fewer above (the work grows with both)."""
    rows = np.load(os.path.join(folder, "vectors.npy"), mmap_mode="r").shape[0]
    return queries[: max(100, min(len(queries), 200_000_000 // rows))]


def rss_bytes(field="VmRSS"):
    with open("/proc/self/status") as handle:
        for line in handle:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    return 0


def recall(found, truth):
    return float(np.mean([len(set(map(int, row)) & set(map(int, expected))) / K for row, expected in zip(found, truth)]))


def latencies(search_one, queries):
    search_one(queries[0])  # warm-up
    times, found = [], []
    for query in queries:
        start = time.perf_counter()
        found.append(search_one(query))
        times.append((time.perf_counter() - start) * 1000)
    return times, found


def numpy_brute(folder, option):
    vectors = np.load(os.path.join(folder, "vectors.npy"))

    def one(query):
        scores = vectors @ query
        best = np.argpartition(-scores, K)[:K]
        return best[np.argsort(-scores[best])]

    def batch(queries):
        out = []
        for start in range(0, len(queries), 64):
            scores = queries[start:start + 64] @ vectors.T
            best = np.argpartition(-scores, K, axis=1)[:, :K]
            out.extend(best)
        return out

    return 0.0, one, batch


def llm_loop(folder, option):
    """llm similar's approach (llm/__init__.py ``cosine_similarity`` over every stored vector, decoded from
    its bytes by ``struct.unpack``, then sorted) on a subsample of ``option`` rows."""
    count = int(option)
    vectors = np.load(os.path.join(folder, "vectors.npy"), mmap_mode="r")[:count]
    blobs = [struct.pack("<" + "f" * vectors.shape[1], *row) for row in vectors.tolist()]

    def cosine_similarity(a, b):
        dot_product = sum(x * y for x, y in zip(a, b))
        magnitude_a = sum(x * x for x in a) ** 0.5
        magnitude_b = sum(x * x for x in b) ** 0.5
        return dot_product / (magnitude_a * magnitude_b)

    def one(query):
        query = query.tolist()
        width = len(query)
        scored = [(cosine_similarity(query, struct.unpack("<" + "f" * width, blob)), row) for row, blob in enumerate(blobs)]
        scored.sort(reverse=True)
        return np.array([row for _, row in scored[:K]])

    return 0.0, one, None


def faiss_flat(folder, option):
    import faiss

    faiss.omp_set_num_threads(2)
    vectors = np.load(os.path.join(folder, "vectors.npy"))
    start = time.perf_counter()
    index = faiss.IndexFlatIP(vectors.shape[1])
    index.add(vectors)
    del vectors
    build = time.perf_counter() - start
    return build, lambda query: index.search(query[None, :], K)[1][0], lambda queries: index.search(queries, K)[1]


def faiss_binary(folder, option):
    import faiss

    faiss.omp_set_num_threads(2)
    vectors = np.load(os.path.join(folder, "vectors.npy"), mmap_mode="r")
    start = time.perf_counter()
    index = faiss.IndexBinaryFlat(vectors.shape[1])
    for first in range(0, len(vectors), 65536):
        index.add(np.packbits(np.asarray(vectors[first:first + 65536]) > 0, axis=1))
    build = time.perf_counter() - start
    pack = lambda q: np.packbits(q > 0, axis=-1)  # noqa: E731
    return build, lambda query: index.search(pack(query[None, :]), K)[1][0], lambda queries: index.search(pack(queries), K)[1]


def _vizcli(searcher):
    return (lambda query: [hit.row for hit in searcher.search_vectors(query[None, :], K)[0]],
            lambda queries: [[hit.row for hit in hits] for hits in searcher.search_vectors(queries, K)])


def vizcli_exact(folder, option):
    from vizcli.search.searcher import Searcher

    start = time.perf_counter()
    searcher = Searcher(os.path.join(folder, "vectors.parquet"), in_memory=option == "in-memory")
    return (time.perf_counter() - start, *_vizcli(searcher))


def vizcli_quantized(folder, option):
    from vizcli.search.searcher import Searcher

    quantization, rescore = option.split(":")
    start = time.perf_counter()
    searcher = Searcher(os.path.join(folder, "vectors.parquet"), mode=quantization, rescore=int(rescore))
    return (time.perf_counter() - start, *_vizcli(searcher))


def vizcli_index(folder, option):
    from vizcli.search.index import IndexSettings, build_index, index_path
    from vizcli.search.searcher import Searcher
    from vizcli.search.source import EmbedOutput

    path = os.path.join(folder, "vectors.parquet")
    build = 0.0
    if not index_path(path, "mean").exists():
        start = time.perf_counter()
        build_index(EmbedOutput(path), IndexSettings(), threads=2)
        build = time.perf_counter() - start
    searcher = Searcher(path, mode="index", expansion_search=int(option), threads=1)
    return (build, *_vizcli(searcher))


def together(folder, options):
    """numpy, vizcli exact --in-memory, vizcli binary (several --rescore), faiss binary and the vizcli index in one
    process, timed query by query in turn, so a busy machine slows them alike; the float vectors are shared."""
    from vizcli.search.quantized import QuantizedVectors
    from vizcli.search.searcher import Searcher

    path = os.path.join(folder, "vectors.parquet")
    exact = Searcher(path, in_memory=True)
    vectors = exact._loaded.vectors
    runners = {"numpy:": (lambda query: np.argpartition(-(vectors @ query), K)[:K], None),
               "vizcli-exact:in-memory": _vizcli(exact)}
    for option in options:
        method, _, setting = option.partition(":")
        if method == "binary":
            searcher = Searcher.__new__(Searcher)  # the exact searcher's vectors, quantized: one copy in memory
            searcher.__dict__.update(exact.__dict__, mode="binary", rescore=int(setting), _loaded=None,
                                     _quantized=QuantizedVectors(vectors, exact._loaded.ids, None, "binary"))
            runners[f"vizcli-quantized:binary:{setting}"] = _vizcli(searcher)
        elif method == "index":
            runners[f"vizcli-index:{setting}"] = _vizcli(Searcher(path, mode="index", expansion_search=int(setting), threads=1))
        elif method == "faiss-binary":
            runners["faiss-binary:"] = faiss_binary(folder, "")[1:]
    return runners


def main_together(folder, options, single):
    queries = np.load(os.path.join(folder, "queries.npy"))
    truth = np.load(os.path.join(folder, "truth.npy"))
    runners = together(folder, options)
    times = {name: [] for name in runners}
    found = {name: [] for name in runners}
    for name, (one, _) in runners.items():
        one(queries[0])  # warm-up
    for query in queries[:single]:
        for name, (one, _) in runners.items():
            start = time.perf_counter()
            found[name].append(one(query))
            times[name].append((time.perf_counter() - start) * 1000)
    qps = {}
    batched = batch_queries(queries, folder)
    for name, (_, batch) in runners.items():
        if batch is not None:
            start = time.perf_counter()
            batch(batched)
            qps[name] = len(batched) / (time.perf_counter() - start)
    for name in runners:
        print(json.dumps({"name": name, "p50_ms": float(np.percentile(times[name], 50)), "p99_ms": float(np.percentile(times[name], 99)),
                          "recall": recall(found[name], truth[:single]), "qps": qps.get(name), "queries": single}))


METHODS = {"numpy": numpy_brute, "llm": llm_loop, "faiss-flat": faiss_flat, "faiss-binary": faiss_binary,
           "vizcli-exact": vizcli_exact, "vizcli-quantized": vizcli_quantized, "vizcli-index": vizcli_index}


def main():
    method, folder = sys.argv[1:3]
    if method == "together":
        main_together(folder, sys.argv[3].split(","), int(os.environ.get("SEARCH_SINGLE", "100")))
        return
    option = sys.argv[3] if len(sys.argv) > 3 else ""
    single = int(os.environ.get("SEARCH_SINGLE", "100"))
    queries = np.load(os.path.join(folder, "queries.npy"))
    truth = np.load(os.path.join(folder, "truth.npy"))
    import pyarrow  # noqa: F401  (the baseline holds the imports every method pays)

    import vizcli.search.searcher  # noqa: F401
    baseline = rss_bytes()
    build, one, batch = METHODS[method](folder, option)
    if method == "llm":
        count = int(option)
        sub_truth = np.argsort(-(queries[:single] @ np.load(os.path.join(folder, "vectors.npy"), mmap_mode="r")[:count].T), axis=1)[:, :K]
        times, found = latencies(one, queries[:single])
        record = {"recall": recall(found, sub_truth), "subsample": count}
    else:
        times, found = latencies(one, queries[:single]) if single else ([], [])
        record = {"recall": recall(found, truth[:single])} if single else {}
        if batch is not None:
            batched = batch_queries(queries, folder)
            start = time.perf_counter()
            batch_found = batch(batched)
            record["qps"] = len(batched) / (time.perf_counter() - start)
            record["batch_recall"] = recall(batch_found, truth[: len(batched)])
            record["batch_queries"] = len(batched)
            record.setdefault("recall", record["batch_recall"])
    record.update({"method": method, "option": option, "build_s": build, "p50_ms": float(np.percentile(times, 50)) if times else None,
                   "p99_ms": float(np.percentile(times, 99)) if times else None, "queries": len(times), "peak_rss": rss_bytes("VmHWM"),
                   "baseline_rss": baseline})
    print(json.dumps(record))


if __name__ == "__main__":
    main()
