-- The baseline's one query: a round trip and nothing else.
SELECT 1;
