ALTER TABLE subscriptions DROP COLUMN last_event_rank;
