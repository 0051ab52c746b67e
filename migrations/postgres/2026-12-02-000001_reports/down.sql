DROP TABLE report_files;
DROP TABLE reports;
