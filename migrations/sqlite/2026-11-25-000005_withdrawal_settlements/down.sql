DROP TABLE withdrawal_settlements;
