"""The store in, reports out: text, csv, jsonl, html."""
