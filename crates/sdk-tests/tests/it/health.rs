//! `svix.health().get()`: a 2xx with no body, which needs no valid token.

use herald_testkit::{Backend, TestApp, backends};

#[backends]
async fn health_succeeds_through_the_sdk(backend: Backend) {
    let app = TestApp::builder().backend(backend).spawn().await;

    app.svix_client().health().get().await.unwrap();
    app.svix_client_with("not-a-token").health().get().await.unwrap();
}
