//! `#[krust::custom_resource]`: a custom resource type with kube-rs' `CustomResource` derive, and
//! nothing to repeat about where its generated code finds its crates.
//!
//! kube-derive's generated code names `::kube::core`, `::k8s_openapi`, `::schemars`, `::serde`
//! and `::serde_json`; a krust project depends on `krust` (not on `kube`), so each type would
//! need a `crates(...)` block and `#[serde(crate)]`/`#[schemars(crate)]` attributes. This
//! attribute adds them, pointing at krust's re-exports, unless the type already sets them:
//!
//! ```
//! use krust::prelude::*;
//! use serde::{Deserialize, Serialize};
//!
//! #[krust::custom_resource(group = "example.com", version = "v1", kind = "Widget", namespaced)]
//! #[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
//! pub struct WidgetSpec {
//!     pub size: i32,
//! }
//!
//! let crd = Widget::crd();
//! assert_eq!(crd.metadata.name.as_deref(), Some("widgets.example.com"));
//! assert_eq!(Widget::new("w", WidgetSpec { size: 3 }).spec.size, 3);
//! ```
//!
//! The arguments are kube-derive's `#[kube(...)]` arguments, unchanged. The attribute also
//! works over an existing `#[derive(CustomResource)] #[kube(...)]` pair
//! (`#[krust::custom_resource]` with no arguments, written above the derive).

use proc_macro::TokenStream;
use proc_macro2::{TokenStream as TokenStream2, TokenTree};
use quote::quote;
use syn::{Attribute, DeriveInput, parse_macro_input, parse_quote, punctuated::Punctuated, spanned::Spanned};

/// Makes the annotated struct the spec of a custom resource: adds
/// `#[derive(krust::CustomResource)]` and `#[kube(<arguments>)]`, with kube-derive's `crates(...)`
/// pointed at krust's re-exports (unless given), `#[serde(crate = "::krust::serde")]` when the
/// type derives `Serialize`/`Deserialize` and `#[schemars(crate = "::krust::schemars")]` when it
/// derives `JsonSchema` (unless it sets them). Write it above `#[derive(...)]`.
///
/// The arguments are kube-derive's: `group`, `version`, `kind` (required), then `namespaced`,
/// `status`, `shortname`, `printcolumn`, `scale`, `validation`, and the rest.
#[proc_macro_attribute]
pub fn custom_resource(args: TokenStream, item: TokenStream) -> TokenStream {
    let args = TokenStream2::from(args);
    let input = parse_macro_input!(item as DeriveInput);
    match expand(args, input) {
        Ok(tokens) => tokens.into(),
        Err(error) => error.to_compile_error().into(),
    }
}

fn expand(args: TokenStream2, mut input: DeriveInput) -> syn::Result<TokenStream2> {
    let kube_attrs: Vec<&Attribute> = input.attrs.iter().filter(|a| a.path().is_ident("kube")).collect();
    if args.is_empty() && kube_attrs.is_empty() {
        return Err(syn::Error::new(
            input.ident.span(),
            "#[krust::custom_resource] needs the resource's group, version and kind: \
             #[krust::custom_resource(group = \"example.com\", version = \"v1\", kind = \"Widget\")]",
        ));
    }
    let derived = derived_names(&input.attrs)?;
    let sets_crates =
        has_top_level_ident(&args, "crates") || kube_attrs.iter().any(|a| attr_has_ident(a, "crates"));

    let mut before = Vec::<Attribute>::new();
    let mut after = Vec::<Attribute>::new();
    if !derived.iter().any(|d| d == "CustomResource") {
        before.push(parse_quote!(#[derive(::krust::CustomResource)]));
    }
    if !args.is_empty() {
        after.push(parse_quote!(#[kube(#args)]));
    }
    if !sets_crates {
        after.push(parse_quote!(#[kube(crates(
            kube = "::krust",
            kube_core = "::krust::kube_core",
            k8s_openapi = "::krust::k8s_openapi",
            schemars = "::krust::schemars",
            serde = "::krust::serde",
            serde_json = "::krust::serde_json"
        ))]));
    }
    let serde_derived = derived.iter().any(|d| d == "Serialize" || d == "Deserialize");
    if serde_derived && !input.attrs.iter().any(|a| a.path().is_ident("serde") && attr_has_ident(a, "crate"))
    {
        after.push(parse_quote!(#[serde(crate = "::krust::serde")]));
    }
    let schema_derived = derived.iter().any(|d| d == "JsonSchema");
    if schema_derived
        && !input.attrs.iter().any(|a| a.path().is_ident("schemars") && attr_has_ident(a, "crate"))
    {
        after.push(parse_quote!(#[schemars(crate = "::krust::schemars")]));
    }
    match &input.data {
        syn::Data::Struct(_) => {}
        syn::Data::Enum(e) => {
            return Err(syn::Error::new(
                e.enum_token.span(),
                "#[krust::custom_resource] goes on the spec struct of a custom resource, not on an enum",
            ));
        }
        syn::Data::Union(u) => {
            return Err(syn::Error::new(
                u.union_token.span(),
                "#[krust::custom_resource] goes on the spec struct of a custom resource, not on a union",
            ));
        }
    }
    let existing = std::mem::take(&mut input.attrs);
    input.attrs = before.into_iter().chain(existing).chain(after).collect();
    Ok(quote!(#input))
}

/// The last path segment of every derive of the item (`serde::Serialize` -> `Serialize`).
fn derived_names(attrs: &[Attribute]) -> syn::Result<Vec<String>> {
    let mut names = Vec::new();
    for attr in attrs.iter().filter(|a| a.path().is_ident("derive")) {
        let paths = attr.parse_args_with(Punctuated::<syn::Path, syn::Token![,]>::parse_terminated)?;
        names.extend(paths.iter().filter_map(|p| p.segments.last()).map(|s| s.ident.to_string()));
    }
    Ok(names)
}

/// Whether a list attribute (`#[name(...)]`) has `ident` among its top-level tokens.
fn attr_has_ident(attr: &Attribute, ident: &str) -> bool {
    match &attr.meta {
        syn::Meta::List(list) => has_top_level_ident(&list.tokens, ident),
        _ => false,
    }
}

fn has_top_level_ident(tokens: &TokenStream2, ident: &str) -> bool {
    tokens.clone().into_iter().any(|t| matches!(t, TokenTree::Ident(i) if i == ident))
}
