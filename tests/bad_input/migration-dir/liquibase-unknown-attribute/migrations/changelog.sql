--liquibase formatted sql

--changeset jane:1 runInTransactoin:false
SELECT 1;
