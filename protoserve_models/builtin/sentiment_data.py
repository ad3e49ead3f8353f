"""The labeled sentiment corpus the project ships (data/sentiment/, MIT, see SOURCE.md there)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

DATA_DIR = Path(__file__).with_name("data") / "sentiment"
DOMAIN_FILES = {
    "social": "tweets_GroundTruth.tsv",
    "movie": "movieReviewSnippets_GroundTruth.tsv",
    "product": "amazonReviewSnippets_GroundTruth.tsv",
    "news_opinion": "nytEditorialSnippets_GroundTruth.tsv",
}
SENTIMENT_SOURCE = (
    "VADER human-rated sentences (Hutto & Gilbert, ICWSM 2014; MIT license, shipped in the "
    "vaderSentiment 3.3.2 source distribution): tweets, movie-review snippets, Amazon product-review "
    "snippets and New York Times editorial snippets, each rated -4..4 by 20 people. "
    "Label: mean rating below -t negative, above t positive, otherwise neutral."
)


@dataclass(frozen=True)
class SentimentCorpus:
    texts: list[str]
    labels: list[str]
    domains: list[str]


def label_for(rating: float, threshold: float) -> str:
    if rating < -threshold:
        return "negative"
    if rating > threshold:
        return "positive"
    return "neutral"


def load_sentiment_corpus(threshold: float, data_dir: Path = DATA_DIR) -> SentimentCorpus:
    texts, labels, domains = [], [], []
    for domain, file_name in DOMAIN_FILES.items():
        for line in (data_dir / file_name).read_text(encoding="utf-8").splitlines():
            _, rating, text = line.split("\t", 2)
            texts.append(text)
            labels.append(label_for(float(rating), threshold))
            domains.append(domain)
    return SentimentCorpus(texts, labels, domains)
