//! The end-to-end tests, in one binary so that the workspace is linked once for all of them: real
//! coordinators on 127.0.0.1:0 with temporary sled folders, lanes on their own actix systems, the
//! `checkout` binary as processes, and clients that lie.

mod browser_smoke;
mod common;
mod coupons;
mod crash_and_outage;
mod data_folders;
mod decode_files;
mod disk_full;
mod end_to_end;
mod grpc_contract;
mod hostile_clients;
mod hostile_connections;
mod lane_offline;
mod lane_scanning;
mod lane_screens;
mod manager_day;
mod members;
mod open_price;
mod photo_corpus;
mod processes;
mod promotions;
mod provider_protocols;
mod real_client;
mod reconciliation;
mod rush;
