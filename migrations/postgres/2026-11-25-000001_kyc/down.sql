DROP TABLE scheduled_runs;
DROP TABLE email_outbox;
DROP TABLE kyc_profiles;
DROP TABLE kyc_documents;
DROP TABLE kyc_applications;
