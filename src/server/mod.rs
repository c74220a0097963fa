//! The HTTP plumbing: listeners and connections (`listen`, `connection`, `parse_errors`), answer
//! bodies on their way out (`outbound`), the routes and their
//! layers (`routes`, `middleware`, `request_id`), bearer tokens (`auth`, `tokens`), the state handlers share
//! (`state`), the offline API docs (`docs`) and the report page (`ui`). Handlers themselves are in `crate::api`.

pub mod auth;
pub mod connection;
pub mod docs;
pub mod listen;
pub mod middleware;
pub mod outbound;
pub mod parse_errors;
pub mod request_id;
pub mod routes;
pub mod state;
pub mod tokens;
pub mod ui;
