//! A query's field guard and record count decided on its whole document, so it can run
//! without the per-field hook (`per_field::PerField`).
//!
//! Why: async-graphql calls an extension's `resolve` hook for every field of every record, and
//! with any extension installed it also takes a slower path per field (a registry lookup and
//! one more boxed future). A page of 50 records with 10 fields resolves about 550 fields; on
//! query 1 of BENCHMARKS.md the same server with no extension at all answered 30–45 % more
//! requests per second. The guard's answer, though, depends only on the field's type and name,
//! and a record's count only on where it stands in the response; both are known from the
//! document when every field of it sits on an object type. So:
//!
//! * `Types::plan` walks the operation that will run and says yes only if every field
//!   is on an object type it can name, the principal may read every field (the same
//!   `Policy::missing_category` the guard asks), and nothing in it is decided at run time: no
//!   interface or union (`node(id:)`), no directive but `@skip`/`@include` on a selection
//!   (evaluated as async-graphql does, see `skipped`), no introspection, no mutation, no
//!   fragment on another type. Anything else — also a document that will not validate —
//!   runs with the hook as before, so a refused field still resolves to null with its
//!   `FORBIDDEN_FIELD` error at its path.
//! * the records are counted from the response after execution, by `shape` (which counts
//!   every response it can read, planned or not), by the rule of `records::counts`.

use std::collections::HashMap;

use async_graphql::parser::types::{
    BaseType, Directive, DocumentOperations, ExecutableDocument, OperationDefinition,
    OperationType, Selection, SelectionSet, Type, TypeKind, TypeSystemDefinition,
};
use async_graphql::{InputType, Positioned, Variables};

use super::{limits, records};
use crate::policy::{PermissionSet, Policy};

/// The output types of the served schema, read once from its SDL.
pub struct Types {
    /// Object type → its fields → the field's type.
    objects: HashMap<String, HashMap<String, Type>>,
    /// Interfaces and unions → the object types a value of them can be (known only when it
    /// resolves), in the SDL's order.
    abstracts: HashMap<String, Vec<String>>,
}

impl Types {
    /// `None` if the SDL does not parse (it is the served schema's own, so it always does).
    pub fn from_sdl(sdl: &str) -> Option<Self> {
        let doc = async_graphql::parser::parse_schema(sdl).ok()?;
        let mut objects = HashMap::new();
        let mut abstracts: HashMap<String, Vec<String>> = HashMap::new();
        for def in doc.definitions {
            let TypeSystemDefinition::Type(t) = def else {
                continue;
            };
            let name = t.node.name.node.to_string();
            match t.node.kind {
                TypeKind::Object(o) => {
                    for interface in &o.implements {
                        abstracts
                            .entry(interface.node.to_string())
                            .or_default()
                            .push(name.clone());
                    }
                    let fields = o
                        .fields
                        .into_iter()
                        .map(|f| (f.node.name.node.to_string(), f.node.ty.node))
                        .collect();
                    objects.insert(name, fields);
                }
                TypeKind::Interface(_) => {
                    abstracts.entry(name).or_default();
                }
                TypeKind::Union(u) => {
                    let members = u.members.iter().map(|m| m.node.to_string());
                    abstracts.entry(name).or_default().extend(members);
                }
                TypeKind::Scalar | TypeKind::Enum(_) | TypeKind::InputObject(_) => {}
            }
        }
        Some(Self { objects, abstracts })
    }

    /// Whether the operation async-graphql will run (`operation_name`, else the only one) may
    /// run without the per-field hook (see the module comment).
    pub fn plan(
        &self,
        doc: &ExecutableDocument,
        operation_name: Option<&str>,
        variables: &Variables,
        policy: &Policy,
        perms: &PermissionSet,
    ) -> bool {
        let Some(operation) = operation(doc, operation_name) else {
            return false;
        };
        if operation.ty != OperationType::Query || !operation.directives.is_empty() {
            return false;
        }
        let mut walk = Walk {
            types: self,
            doc,
            variables,
            policy,
            perms,
            budget: limits::MAX_SELECTIONS,
        };
        walk.selection_set("Query", &operation.selection_set.node, 0)
            .is_some()
    }

    /// The type of `parent`'s field `name`, if `parent` is an object type that has it.
    pub(super) fn field(&self, parent: &str, name: &str) -> Option<&Type> {
        self.objects.get(parent)?.get(name)
    }

    pub(super) fn is_object(&self, name: &str) -> bool {
        self.objects.contains_key(name)
    }

    /// The object types a value of `name` can be: itself if it is an object type, those that
    /// implement or make up an interface or union, none for a scalar or enum.
    pub(super) fn possible<'a>(&'a self, name: &'a str) -> &'a [String] {
        match self.objects.get_key_value(name) {
            Some((own, _)) => std::slice::from_ref(own),
            None => self.abstracts.get(name).map_or(&[], Vec::as_slice),
        }
    }
}

/// The operation async-graphql runs for `operation_name` (else the only one): the same choice
/// as its `prepare_request`.
pub(super) fn operation<'a>(
    doc: &'a ExecutableDocument,
    operation_name: Option<&str>,
) -> Option<&'a OperationDefinition> {
    let operation = match (&doc.operations, operation_name) {
        (DocumentOperations::Single(op), None) => op,
        (DocumentOperations::Multiple(ops), Some(name)) => ops.get(name)?,
        (DocumentOperations::Multiple(ops), None) if ops.len() == 1 => ops.values().next()?,
        _ => return None,
    };
    Some(&operation.node)
}

struct Walk<'a> {
    types: &'a Types,
    doc: &'a ExecutableDocument,
    variables: &'a Variables,
    policy: &'a Policy,
    perms: &'a PermissionSet,
    /// Selections left to visit: `limits` bounds the expanded document already; this keeps the
    /// walk bounded even for a document that reached here without that check.
    budget: u64,
}

impl Walk<'_> {
    fn selection_set(&mut self, parent: &str, set: &SelectionSet, depth: usize) -> Option<()> {
        // Fragments spread into each other count as nesting, so a cycle ends here too.
        if depth > limits::MAX_NESTING {
            return None;
        }
        let fields = self.types.objects.get(parent)?;
        for selection in &set.items {
            self.budget = self.budget.checked_sub(1)?;
            // What async-graphql leaves out before execution is neither guarded nor counted
            // there either.
            if skipped(selection.node.directives(), self.variables)? {
                continue;
            }
            match &selection.node {
                Selection::Field(field) => {
                    let field = &field.node;
                    let name = field.name.node.as_str();
                    if name == "__typename" {
                        // Neither guarded nor counted by the hook; a string in the response.
                        continue;
                    }
                    let ty = fields.get(name)?;
                    if self
                        .policy
                        .missing_category(self.perms, parent, name)
                        .is_some()
                    {
                        return None;
                    }
                    let sub = &field.selection_set.node;
                    let named = crate::introspection::named(ty);
                    if self.types.abstracts.contains_key(named) {
                        return None;
                    }
                    if self.types.objects.contains_key(named) {
                        if sub.items.is_empty() {
                            return None;
                        }
                        self.selection_set(named, sub, depth + 1)?;
                    } else if !sub.items.is_empty() {
                        return None;
                    }
                }
                Selection::FragmentSpread(spread) => {
                    let fragment = &self
                        .doc
                        .fragments
                        .get(&spread.node.fragment_name.node)?
                        .node;
                    if !fragment.directives.is_empty()
                        || fragment.type_condition.node.on.node != parent
                    {
                        return None;
                    }
                    self.selection_set(parent, &fragment.selection_set.node, depth + 1)?;
                }
                Selection::InlineFragment(inline) => {
                    let inline = &inline.node;
                    if inline
                        .type_condition
                        .as_ref()
                        .is_some_and(|c| c.node.on.node != parent)
                    {
                        return None;
                    }
                    self.selection_set(parent, &inline.selection_set.node, depth + 1)?;
                }
            }
        }
        Some(())
    }
}

/// Whether async-graphql leaves this selection out (`Some(true)`), runs it (`Some(false)`), or
/// it carries a directive other than `@skip`/`@include` (`None`: run per field). The rule is
/// async-graphql 7's own (`remove_skipped_selection` in its `schema.rs`), applied before
/// execution to the request's variables as sent: the `if` argument with its variables put in
/// (any one missing: null), parsed as a `Boolean` (anything else: false); `@skip` true or
/// `@include` false leaves the selection out. It must stay that rule: a selection thought left
/// out but run would resolve unguarded (the golden permission cases run both executors on
/// directives with literals, variables, a missing variable and a default).
pub(crate) fn skipped(directives: &[Positioned<Directive>], variables: &Variables) -> Option<bool> {
    for directive in directives {
        let include = match directive.node.name.node.as_str() {
            "skip" => false,
            "include" => true,
            _ => return None,
        };
        let Some(condition) = directive.node.get_argument("if") else {
            continue;
        };
        let value = condition
            .node
            .clone()
            .into_const_with(|name| variables.get(&name).cloned().ok_or(()))
            .unwrap_or_default();
        let value = <bool as InputType>::parse(Some(value)).unwrap_or_default();
        if include != value {
            return Some(true);
        }
    }
    Some(false)
}

/// Whether a value at this field counts, by the hook's own rule: the field's value itself if it
/// is not a list (`records::counts`), else each item of the innermost list (resolved, and
/// counted, by the hook as the list's items).
pub(super) fn counts(parent: &str, name: &str, ty: &Type) -> bool {
    match &ty.base {
        BaseType::Named(_) => records::counts_field(parent, name, &ty.to_string()),
        BaseType::List(inner) => counts("[]", name, inner),
    }
}

#[cfg(test)]
mod tests;
