//! Herald's OpenAPI document, generated from the handlers' `#[utoipa::path]`
//! annotations and the `ToSchema` types, and served at `/api/v1/openapi.json`.
//!
//! Schema names and operation ids follow the Svix contract, so a test can compare the
//! two. The error responses every operation shares and the bearer security scheme are
//! added here once instead of on each handler.

use std::sync::LazyLock;

use axum::{
    extract::State,
    http::{HeaderValue, header},
    response::{IntoResponse, Response},
};
use utoipa::{
    Modify, OpenApi,
    openapi::{
        ContentBuilder, Ref, ResponseBuilder,
        security::{HttpAuthScheme, HttpBuilder, SecurityRequirement, SecurityScheme},
    },
};

use crate::{
    Shared,
    error::{HttpErrorOut, HttpValidationError, ValidationErrorOut},
    ingest::{endpoints as ie, receive, sources},
    pagination::Ordering,
    routes::{
        applications, attempts,
        endpoints::{handlers as eps, headers, secret, types as ept},
        event_types, events, health, messages, recovery, retry_schedules, stream,
    },
};

/// Name of the bearer security scheme, as the contract calls it.
const SECURITY: &str = "HTTPBearer";

#[derive(OpenApi)]
#[openapi(
    info(title = "Herald API", description = "Herald's Svix-compatible webhook API."),
    paths(
        applications::list, applications::create, applications::get, applications::upsert,
        applications::patch, applications::delete,
        event_types::list, event_types::create, event_types::get, event_types::upsert,
        event_types::patch, event_types::delete,
        retry_schedules::get, retry_schedules::set,
        eps::list, eps::create, eps::get, eps::upsert, eps::patch, eps::delete,
        secret::get_secret, secret::rotate_secret,
        headers::get, headers::put, headers::patch,
        messages::create, messages::list, messages::get_one,
        attempts::list_by_endpoint, attempts::list_by_msg, attempts::get_one, attempts::expunge_attempt,
        attempts::expunge_message, attempts::attempted_messages, attempts::attempted_destinations, attempts::stats,
        recovery::resend, recovery::recover, recovery::replay_missing, recovery::bulk_replay,
        events::list, events::poll, events::consumer_poll, events::consumer_seek, stream::stream,
        health::get,
        sources::list, sources::create, sources::get, sources::upsert, sources::patch, sources::delete,
        sources::rotate_token, sources::list_log,
        ie::list, ie::create, ie::get, ie::upsert, ie::delete, ie::get_secret, ie::rotate_secret,
        ie::get_headers, ie::set_headers,
        receive::receive,
    ),
    components(schemas(
        HttpErrorOut, HttpValidationError, ValidationErrorOut, Ordering,
        applications::ApplicationIn, applications::ApplicationOut, applications::ApplicationPatch,
        applications::ApplicationList,
        event_types::EventTypeIn, event_types::EventTypeOut, event_types::EventTypePatch,
        event_types::EventTypeUpsertIn, event_types::EventTypeList,
        retry_schedules::RetryScheduleInOut, retry_schedules::RetryScheduleList, retry_schedules::DurationInOut,
        ept::EndpointIn, ept::EndpointOut, ept::EndpointPatch, ept::EndpointUpsertIn, ept::EndpointList,
        secret::EndpointSecretOut, secret::EndpointSecretRotateIn,
        headers::EndpointHeadersIn, headers::EndpointHeadersOut, headers::EndpointHeadersPatchIn,
        messages::MessageIn, messages::MessageOut, messages::MessageList,
        attempts::MessageStatus, attempts::MessageStatusText, attempts::MessageAttemptTriggerType,
        attempts::StatusCodeClass, attempts::MessageAttemptOut, attempts::MessageAttemptList,
        attempts::EndpointMessageOut, attempts::EndpointMessageList, attempts::MessageEndpointOut,
        attempts::MessageEndpointList, attempts::EndpointStats,
        recovery::EmptyResponse, recovery::BackgroundTaskStatus, recovery::BackgroundTaskType,
        recovery::RecoverIn, recovery::RecoverOut, recovery::ReplayIn, recovery::ReplayOut, recovery::BulkReplayIn,
        sources::IngestSourceIn, sources::IngestSourceOut, sources::IngestSourcePatch, sources::IngestSourceList,
        sources::SourceConfigIn, sources::SourceConfigOut, sources::RotateTokenOut, sources::IngestLogOut,
        sources::IngestLogList,
        ie::IngestEndpointIn, ie::IngestEndpointUpsertIn, ie::IngestEndpointOut, ie::IngestEndpointList,
        ie::IngestEndpointSecretOut, ie::IngestEndpointSecretIn, ie::IngestEndpointHeadersIn,
        ie::IngestEndpointHeadersOut,
        events::MessageEventsOut, events::PollingEndpointMessageOut, events::PollingEndpointOut,
        events::PollingEndpointConsumerSeekIn, events::PollingEndpointConsumerSeekOut,
    )),
    modifiers(&CommonParts),
)]
struct ApiDoc;

/// Adds what every operation shares: error responses and bearer auth.
struct CommonParts;

impl Modify for CommonParts {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        let components = doc.components.get_or_insert_with(Default::default);
        components.security_schemes.insert(
            SECURITY.to_owned(),
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some("HTTP Bearer token passed in the `Authorization` header"))
                    .build(),
            ),
        );
        let errors = [
            ("400", "Bad request", "HttpErrorOut"),
            ("401", "Unauthorized", "HttpErrorOut"),
            ("403", "Forbidden", "HttpErrorOut"),
            ("404", "Not Found", "HttpErrorOut"),
            ("409", "Conflict", "HttpErrorOut"),
            ("413", "Payload Too Large", "HttpErrorOut"),
            ("415", "Unsupported Media Type", "HttpErrorOut"),
            ("422", "Validation Error", "HTTPValidationError"),
            ("429", "Too Many Requests", "HttpErrorOut"),
        ];
        for (path, item) in doc.paths.paths.iter_mut() {
            let operations = [&mut item.get, &mut item.put, &mut item.post, &mut item.patch, &mut item.delete];
            for operation in operations.into_iter().flatten() {
                for (status, description, schema) in errors {
                    let response = ResponseBuilder::new()
                        .description(description)
                        .content(
                            "application/json",
                            ContentBuilder::new().schema(Some(Ref::from_schema_name(schema))).build(),
                        )
                        .build();
                    operation.responses.responses.entry(status.to_owned()).or_insert(response.into());
                }
                // Ingest URLs are authenticated by their token and the provider's signature.
                if path != "/api/v1/health" && path != receive::PATH {
                    operation.security = Some(vec![SecurityRequirement::new(SECURITY, Vec::<String>::new())]);
                }
            }
        }
    }
}

/// The OpenAPI document describing this crate's routes.
pub fn document() -> utoipa::openapi::OpenApi {
    ApiDoc::openapi()
}

static DOCUMENT_JSON: LazyLock<String> = LazyLock::new(|| document().to_json().unwrap_or_else(|_| "{}".to_owned()));

/// `GET /api/v1/openapi.json`.
pub(crate) async fn serve(State(_): State<Shared>) -> Response {
    let mut response = DOCUMENT_JSON.as_str().into_response();
    response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}
