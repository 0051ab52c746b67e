DROP TABLE scheduled_reports;
DROP TABLE report_schedules;
DROP TABLE report_files;
DROP TABLE reports;
