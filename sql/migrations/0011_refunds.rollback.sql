DROP FUNCTION refund_status_rank(text);
DROP TABLE refunds;
