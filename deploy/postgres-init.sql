-- One database per service, as in production; pg_trgm for the registry's name search.
CREATE DATABASE citydata_registry OWNER citydata;
CREATE DATABASE citydata_dossier OWNER citydata;
CREATE DATABASE citydata_signing OWNER citydata;
CREATE DATABASE citydata_gateway OWNER citydata;
CREATE DATABASE citydata_tasks OWNER citydata;
\c citydata_registry
CREATE EXTENSION IF NOT EXISTS pg_trgm;
\c template1
CREATE EXTENSION IF NOT EXISTS pg_trgm;
