//! `#[backends]`: one test body, run once per store backend.
//!
//! ```ignore
//! #[herald_testkit::backends]
//! async fn messages_are_listed_newest_first(backend: Backend) {
//!     let app = TestApp::builder().backend(backend).spawn().await;
//!     // …
//! }
//! ```
//!
//! keeps the function as written and adds a module of the same name holding two
//! `#[tokio::test]`s, `sqlite` and `postgres`, that call it with `Backend::Sqlite` and
//! `Backend::Postgres`. Both always run: a PostgreSQL that does not answer fails the
//! `postgres` half loudly, it is never skipped.
//!
//! `#[backends(multi_thread)]` runs both on a two-thread runtime (for cases that race
//! tasks against each other), as the store conformance suite does.
//! `#[should_panic]` and `#[ignore]` on the function are copied to both tests.
//! No `syn`: the function is passed through untouched and only its name is read.

#![forbid(unsafe_code)]

use proc_macro::{Delimiter, TokenStream, TokenTree};

/// Runs an `async fn(backend)` as two tests, one per backend (see the crate docs).
#[proc_macro_attribute]
pub fn backends(attr: TokenStream, item: TokenStream) -> TokenStream {
    let runtime = match attr.to_string().as_str() {
        "" => "::tokio::test",
        "multi_thread" => "::tokio::test(flavor = \"multi_thread\", worker_threads = 2)",
        _ => return compile_error("#[backends] takes nothing or `multi_thread`"),
    };
    let tokens: Vec<TokenTree> = item.clone().into_iter().collect();

    let Some(name) = tokens.windows(2).find_map(|pair| match pair {
        [TokenTree::Ident(kw), TokenTree::Ident(name)] if kw.to_string() == "fn" => Some(name.to_string()),
        _ => None,
    }) else {
        return compile_error("#[backends] goes on an `async fn name(backend: Backend)`");
    };
    if !tokens.iter().any(|t| matches!(t, TokenTree::Ident(i) if i.to_string() == "async")) {
        return compile_error("#[backends] needs an `async fn`");
    }

    // Outer attributes that change how a test runs apply to both tests. (The body is
    // one brace group, so attributes inside it are not seen here.)
    let mut copied = String::new();
    for pair in tokens.windows(2) {
        if let [TokenTree::Punct(p), TokenTree::Group(g)] = pair
            && p.as_char() == '#'
            && g.delimiter() == Delimiter::Bracket
            && matches!(g.stream().into_iter().next(), Some(TokenTree::Ident(i)) if ["should_panic", "ignore"].contains(&i.to_string().as_str()))
        {
            copied.push('#');
            copied.push_str(&g.to_string());
        }
    }

    let tests = format!(
        "mod {name} {{
            {copied} #[{runtime}] async fn sqlite() {{ super::{name}(::herald_testkit::Backend::Sqlite).await }}
            {copied} #[{runtime}] async fn postgres() {{ super::{name}(::herald_testkit::Backend::Postgres).await }}
        }}"
    );
    let mut out = item;
    out.extend(tests.parse::<TokenStream>().expect("the generated tests parse"));
    out
}

fn compile_error(message: &str) -> TokenStream {
    format!("::core::compile_error!({message:?});").parse().expect("a compile_error! call parses")
}
