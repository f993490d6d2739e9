//! Holds no code: this crate exists for its integration tests (`tests/it`), which drive
//! a real Herald server with the official `svix` crate as the only client, to show that
//! the Svix SDK works against Herald unchanged.
