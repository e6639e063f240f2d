"""Retrieval: encoding with length-sorted dynamic padding, an embedding cache, exact chunked
search, BUCC margin mining, and the evaluators of Tatoeba, BUCC 2018, LAReQA and Mewsli-X."""
