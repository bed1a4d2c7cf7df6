"""wordcount-py: counts words.

Input (stdin JSON): {"text": "...", "top": 3}, or a source named "text"
(downloaded by the worker to $FAASD_SOURCES_DIR/text). The result is the JSON
printed on stdout: {"words": n, "unique": n, "top": [[word, count], ...]}.
"""
import collections
import json
import os
import re
import sys


def main():
    raw = sys.stdin.read()
    data = json.loads(raw) if raw.strip() else {}
    text = data.get("text") if isinstance(data, dict) else None
    source = os.path.join(os.environ.get("FAASD_SOURCES_DIR", ""), "text")
    if text is None and os.path.isfile(source):
        with open(source, encoding="utf-8", errors="replace") as f:
            text = f.read()
    if text is None:
        print("wordcount: give data.text or a source named 'text'", file=sys.stderr)
        return 2
    words = re.findall(r"[\w']+", text.lower())
    counts = collections.Counter(words)
    top = int(data.get("top", 3)) if isinstance(data, dict) else 3
    json.dump({"words": len(words), "unique": len(counts), "top": counts.most_common(top)}, sys.stdout)
    print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
