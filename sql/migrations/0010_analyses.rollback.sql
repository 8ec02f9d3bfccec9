ALTER TABLE usage_ledger
    DROP CONSTRAINT usage_ledger_search_id_fkey,
    DROP CONSTRAINT usage_ledger_analysis_id_fkey;
DROP TABLE search_analyses;
DROP TABLE url_analyses;
DROP TABLE searches;
