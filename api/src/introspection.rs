//! Introspection shows each principal the part of the schema it may use.
//!
//! The field guard refuses hidden fields when they are resolved, but an unfiltered
//! introspection result (when `DARTTS_INTROSPECTION` enables it) would still tell a CBP officer
//! that financial data exists and what it looks like. async-graphql's own visibility hooks are
//! per-field `fn(&Context) -> bool` attributes, which cannot read the category table, so the
//! executed introspection result is pruned here instead, before delivery.
//!
//! Two halves:
//! - [`View`]: the served SDL restricted by a rule (the policy). Fields the principal may not
//!   read go; then, until nothing changes, so do types left empty, fields and arguments whose
//!   types went, interface links an object no longer satisfies, and types no longer reachable
//!   from the root types. What remains is itself a valid schema: every name it mentions exists.
//! - [`Plan`]: the request's document, re-read to know which response keys hold `__schema` and
//!   `__type` results and which introspection field every key (aliases and fragments included)
//!   stands for. It prunes those results to the view. A result it cannot explain — a key it
//!   cannot map, or an object whose `name` was not selected, so its identity is unknown — is
//!   withheld rather than guessed.

use std::collections::{BTreeMap, BTreeSet};

use async_graphql::parser::types::{
    BaseType, ExecutableDocument, Field, FieldDefinition, InputValueDefinition,
    OperationDefinition, Selection, SelectionSet, Type, TypeKind, TypeSystemDefinition,
};
use async_graphql::{ErrorExtensionValues, Name, PathSegment, Positioned, ServerError, Value};

use crate::error::ErrorCode;
use crate::policy::{PermissionSet, Policy};

/// Always present, as async-graphql lists them, whoever asks.
const BUILT_IN_SCALARS: [&str; 5] = ["Boolean", "Int", "Float", "String", "ID"];

/// Filter arguments and sort keys that read record fields: the resolvers refuse them when a
/// field is unreadable (`guard::require_readable`), so introspection does not offer them
/// either. Unlisted input fields and enum values read no guarded field and are shown. Kept in
/// step with each filter's `RecordFilter::fields_read` by a test below.
const READS: &[Reads] = &[
    Reads {
        ty: "TradeRecordFilter",
        record: "TradeRecord",
        members: &[
            ("declarationDateFrom", &["declarationDate"]),
            ("declarationDateTo", &["declarationDate"]),
            ("hsCodePrefix", &["hsCode"]),
            ("direction", &["direction"]),
            ("declarationId", &["declarationId"]),
            ("countryOfOrigin", &["countryOfOrigin"]),
            ("countryOfExport", &["countryOfExport"]),
            ("countryOfDestination", &["countryOfDestination"]),
            ("reportingCountry", &["reportingCountry"]),
            ("partnerCountry", &["partnerCountry"]),
            ("providerCountry", &["providerCountry"]),
            ("importerNameContains", &["importerName"]),
            ("importerId", &["importerId"]),
            ("exporterNameContains", &["exporterName"]),
            ("manufacturerNameContains", &["manufacturerName"]),
            ("manufacturerId", &["manufacturerId"]),
            ("port", &["port"]),
            ("transportMode", &["transportMode"]),
            ("declaredValueUsdMin", &["declaredValueUsd"]),
            ("declaredValueUsdMax", &["declaredValueUsd"]),
            ("batchId", &["batch"]),
            ("linkedFinancialActivity", &["linkedFinancialTransactions"]),
        ],
    },
    Reads {
        ty: "FinancialTransactionFilter",
        record: "FinancialTransaction",
        members: &[
            ("reportType", &["reportType"]),
            ("transactionDateFrom", &["transactionDate"]),
            ("transactionDateTo", &["transactionDate"]),
            ("amountUsdMin", &["amountUsd"]),
            ("amountUsdMax", &["amountUsd"]),
            ("subjectNameContains", &["subjectName"]),
            ("subjectTin", &["subjectTin"]),
            ("accountNumber", &["accountNumber"]),
        ],
    },
    Reads {
        ty: "SubjectRecordFilter",
        record: "SubjectRecord",
        members: &[
            ("kind", &["kind"]),
            ("caseStatus", &["caseStatus"]),
            ("nameContains", &["name", "businessName"]),
            ("recordId", &["recordId"]),
        ],
    },
    Reads {
        ty: "MirrorFilter",
        record: "TradeRecord",
        members: &[
            ("nation", &["reportingCountry", "partnerCountry"]),
            ("hsCodePrefix", &["hsCode"]),
            ("declarationDateFrom", &["declarationDate"]),
            ("declarationDateTo", &["declarationDate"]),
        ],
    },
    Reads {
        ty: "TradeFinanceFilter",
        record: "FinancialTransaction",
        members: &[
            ("dateFrom", &["transactionDate"]),
            ("dateTo", &["transactionDate"]),
            ("subjectNameContains", &["subjectName"]),
            ("subjectTin", &["subjectTin"]),
        ],
    },
    Reads {
        ty: "TotalsDimension",
        record: "TradeRecord",
        members: crate::analysis::totals::DIMENSION_READS,
    },
    Reads {
        ty: "TotalsMeasure",
        record: "TradeRecord",
        members: crate::analysis::totals::MEASURE_READS,
    },
    Reads {
        ty: "TradeRecordSortField",
        record: "TradeRecord",
        members: &[
            ("DECLARATION_DATE", &["declarationDate"]),
            ("DECLARATION_ID", &["declarationId"]),
            ("LINE_NUMBER", &["lineNumber"]),
            ("HS_CODE", &["hsCode"]),
            ("IMPORTER_NAME", &["importerName"]),
            ("IMPORTER_ID", &["importerId"]),
            ("MANUFACTURER_NAME", &["manufacturerName"]),
            ("COUNTRY_OF_ORIGIN", &["countryOfOrigin"]),
            ("COUNTRY_OF_EXPORT", &["countryOfExport"]),
            ("PARTNER_COUNTRY", &["partnerCountry"]),
            ("PROVIDER_COUNTRY", &["providerCountry"]),
            ("PORT", &["port"]),
            ("TRANSPORT_MODE", &["transportMode"]),
            ("QUANTITY", &["quantity"]),
            ("NET_WEIGHT_KG", &["netWeightKg"]),
            ("DECLARED_VALUE_USD", &["declaredValueUsd"]),
        ],
    },
];

/// The input fields or enum values of `ty` that read fields of `record`: `(member, fields)`.
struct Reads {
    ty: &'static str,
    record: &'static str,
    members: &'static [(&'static str, &'static [&'static str])],
}

/// A part of a type whose visibility the rule decides.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Member<'a> {
    /// An output field of an object or interface type.
    Field { ty: &'a str, name: &'a str },
    /// A field of an input object type.
    InputField { ty: &'a str, name: &'a str },
    /// A value of an enum type.
    EnumValue { ty: &'a str, name: &'a str },
}

/// The rule for one principal: fields by their category (`policies/fields.toml`); filter
/// arguments and sort keys by the fields they read (`READS`).
pub fn rule<'a>(policy: &'a Policy, perms: &'a PermissionSet) -> impl Fn(Member<'_>) -> bool + 'a {
    let readable = |ty: &str, field: &str| policy.missing_category(perms, ty, field).is_none();
    move |member| match member {
        Member::Field { ty, name } => readable(ty, name),
        Member::InputField { ty, name } | Member::EnumValue { ty, name } => READS
            .iter()
            .filter(|reads| reads.ty == ty)
            .flat_map(|reads| reads.members.iter().map(move |m| (reads.record, m)))
            .filter(|(_, (member, _))| *member == name)
            .all(|(record, (_, fields))| fields.iter().all(|f| readable(record, f))),
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Scalar,
    Object,
    Interface,
    Union,
    Enum,
    InputObject,
}

/// An argument or input field: the named type it takes, and whether a value must be given.
#[derive(Clone, Debug)]
struct Input {
    ty: String,
    required: bool,
}

#[derive(Clone, Debug)]
struct OutputField {
    ty: String,
    args: BTreeMap<String, Input>,
}

#[derive(Clone, Debug)]
struct TypeDef {
    kind: Kind,
    fields: BTreeMap<String, OutputField>,
    input_fields: BTreeMap<String, Input>,
    values: BTreeSet<String>,
    /// Interfaces this object or interface implements.
    implements: BTreeSet<String>,
    /// A union's member types.
    members: BTreeSet<String>,
}

impl TypeDef {
    fn new(kind: Kind) -> Self {
        TypeDef {
            kind,
            fields: BTreeMap::new(),
            input_fields: BTreeMap::new(),
            values: BTreeSet::new(),
            implements: BTreeSet::new(),
            members: BTreeSet::new(),
        }
    }

    /// A type with nothing left in it is not valid GraphQL, and would only say that
    /// something is hidden there.
    fn is_empty(&self) -> bool {
        match self.kind {
            Kind::Scalar => false,
            Kind::Object | Kind::Interface => self.fields.is_empty(),
            Kind::Union => self.members.is_empty(),
            Kind::Enum => self.values.is_empty(),
            Kind::InputObject => self.input_fields.is_empty(),
        }
    }

    fn size(&self) -> usize {
        1 + self.fields.len()
            + self.fields.values().map(|f| f.args.len()).sum::<usize>()
            + self.input_fields.len()
            + self.values.len()
            + self.implements.len()
            + self.members.len()
    }
}

/// A schema as one principal may see it. Introspection types (`__*`) are not part of it and
/// are always shown: they describe GraphQL, not DARTTS.
#[derive(Clone, Debug)]
pub struct View {
    types: BTreeMap<String, TypeDef>,
    query: String,
    mutation: Option<String>,
    subscription: Option<String>,
    /// Types the directives' arguments take: reachable whatever else goes.
    directive_inputs: BTreeSet<String>,
}

/// The named type under any list and non-null wrappers (`[TradeRecord!]!` → `TradeRecord`).
pub(crate) fn named(ty: &Type) -> &str {
    match &ty.base {
        BaseType::Named(name) => name.as_str(),
        BaseType::List(inner) => named(inner),
    }
}

fn inputs<'a>(defs: impl IntoIterator<Item = &'a InputValueDefinition>) -> BTreeMap<String, Input> {
    defs.into_iter()
        .map(|def| {
            let input = Input {
                ty: named(&def.ty.node).to_owned(),
                required: !def.ty.node.nullable && def.default_value.is_none(),
            };
            (def.name.node.to_string(), input)
        })
        .collect()
}

fn output_type(
    kind: Kind,
    fields: &[Positioned<FieldDefinition>],
    implements: &[Positioned<Name>],
) -> TypeDef {
    TypeDef {
        implements: implements.iter().map(|i| i.node.to_string()).collect(),
        fields: fields
            .iter()
            .map(|f| {
                let field = OutputField {
                    ty: named(&f.node.ty.node).to_owned(),
                    args: inputs(f.node.arguments.iter().map(|a| &a.node)),
                };
                (f.node.name.node.to_string(), field)
            })
            .collect(),
        ..TypeDef::new(kind)
    }
}

impl View {
    /// The whole schema described by `sdl` (what `Schema::sdl` prints).
    pub fn parse(sdl: &str) -> Result<View, String> {
        let doc = async_graphql::parser::parse_schema(sdl).map_err(|e| e.to_string())?;
        let mut types = BTreeMap::new();
        let mut roots = None;
        let mut directive_inputs = BTreeSet::new();
        for definition in doc.definitions {
            match definition {
                TypeSystemDefinition::Schema(schema) => {
                    let name =
                        |n: &Option<Positioned<Name>>| n.as_ref().map(|n| n.node.to_string());
                    roots = Some((
                        name(&schema.node.query),
                        name(&schema.node.mutation),
                        name(&schema.node.subscription),
                    ));
                }
                TypeSystemDefinition::Directive(directive) => {
                    directive_inputs.extend(
                        inputs(directive.node.arguments.iter().map(|a| &a.node))
                            .into_values()
                            .map(|i| i.ty),
                    );
                }
                TypeSystemDefinition::Type(definition) => {
                    let definition = definition.node;
                    let def = match &definition.kind {
                        TypeKind::Scalar => TypeDef::new(Kind::Scalar),
                        TypeKind::Object(o) => output_type(Kind::Object, &o.fields, &o.implements),
                        TypeKind::Interface(i) => {
                            output_type(Kind::Interface, &i.fields, &i.implements)
                        }
                        TypeKind::Union(u) => TypeDef {
                            members: u.members.iter().map(|m| m.node.to_string()).collect(),
                            ..TypeDef::new(Kind::Union)
                        },
                        TypeKind::Enum(e) => TypeDef {
                            values: e
                                .values
                                .iter()
                                .map(|v| v.node.value.node.to_string())
                                .collect(),
                            ..TypeDef::new(Kind::Enum)
                        },
                        TypeKind::InputObject(i) => TypeDef {
                            input_fields: inputs(i.fields.iter().map(|f| &f.node)),
                            ..TypeDef::new(Kind::InputObject)
                        },
                    };
                    types.insert(definition.name.node.to_string(), def);
                }
            }
        }
        for scalar in BUILT_IN_SCALARS {
            types
                .entry(scalar.to_owned())
                .or_insert_with(|| TypeDef::new(Kind::Scalar));
        }
        // Without a `schema` block, the roots are the types with the conventional names.
        let (query, mutation, subscription) = roots.unwrap_or_else(|| {
            let present = |n: &str| types.contains_key(n).then(|| n.to_owned());
            (
                present("Query"),
                present("Mutation"),
                present("Subscription"),
            )
        });
        let query = query.ok_or("the schema has no query type")?;
        if !types.contains_key(&query) {
            return Err(format!("the query type {query} is not defined"));
        }
        Ok(View {
            types,
            query,
            mutation,
            subscription,
            directive_inputs,
        })
    }

    /// The part of this schema `allowed` lets a principal see, still a valid schema.
    pub fn restrict(&self, allowed: impl Fn(Member<'_>) -> bool) -> View {
        let mut view = self.clone();
        for (name, def) in &mut view.types {
            match def.kind {
                Kind::Object | Kind::Interface => def
                    .fields
                    .retain(|f, _| allowed(Member::Field { ty: name, name: f })),
                Kind::InputObject => {
                    let shown = |f: &str| allowed(Member::InputField { ty: name, name: f });
                    // A required field the caller cannot see makes every value it could write
                    // invalid: the whole input type goes (and, below, what needs it).
                    if def
                        .input_fields
                        .iter()
                        .any(|(f, i)| i.required && !shown(f))
                    {
                        def.input_fields.clear();
                    }
                    def.input_fields.retain(|f, _| shown(f));
                }
                Kind::Enum => def
                    .values
                    .retain(|v| allowed(Member::EnumValue { ty: name, name: v })),
                Kind::Scalar | Kind::Union => {}
            }
        }
        // Each pass only removes, so a pass that removes nothing is the fixpoint.
        loop {
            let before = view.size();
            view.drop_dangling();
            view.drop_unreachable();
            if view.size() == before {
                return view;
            }
        }
    }

    fn size(&self) -> usize {
        self.types.values().map(TypeDef::size).sum()
    }

    /// Removes empty types, then every reference to a type that is gone.
    fn drop_dangling(&mut self) {
        // The query root stays even if empty: a schema must have one (and every account may
        // read `me`, so it never is).
        let query = self.query.clone();
        self.types
            .retain(|name, def| *name == query || !def.is_empty());
        let present: BTreeSet<String> = self.types.keys().cloned().collect();
        let interface_fields: BTreeMap<String, BTreeSet<String>> = self
            .types
            .iter()
            .filter(|(_, d)| d.kind == Kind::Interface)
            .map(|(n, d)| (n.clone(), d.fields.keys().cloned().collect()))
            .collect();
        for def in self.types.values_mut() {
            // A field whose type went, or that needs an argument nobody can write, goes.
            def.fields.retain(|_, f| {
                present.contains(&f.ty)
                    && f.args
                        .values()
                        .all(|a| !a.required || present.contains(&a.ty))
            });
            for field in def.fields.values_mut() {
                field.args.retain(|_, a| present.contains(&a.ty));
            }
            if def
                .input_fields
                .values()
                .any(|i| i.required && !present.contains(&i.ty))
            {
                def.input_fields.clear();
            }
            def.input_fields.retain(|_, i| present.contains(&i.ty));
            def.members.retain(|m| present.contains(m));
            // An implementation must have every field of its interface; one that lost some no
            // longer claims the interface (and is not among its possible types).
            let fields = &def.fields;
            def.implements.retain(|i| {
                interface_fields
                    .get(i)
                    .is_some_and(|wanted| wanted.iter().all(|f| fields.contains_key(f)))
            });
        }
        if self.mutation.as_ref().is_some_and(|m| !present.contains(m)) {
            self.mutation = None;
        }
        if self
            .subscription
            .as_ref()
            .is_some_and(|s| !present.contains(s))
        {
            self.subscription = None;
        }
    }

    /// Removes every type no longer reachable from the roots: through fields, arguments,
    /// input fields, implemented interfaces, union members, and from an interface to its
    /// implementations (a `node(id:)` answer may be any of them).
    fn drop_unreachable(&mut self) {
        let mut implementations: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
        for (name, def) in &self.types {
            for interface in &def.implements {
                implementations
                    .entry(interface.as_str())
                    .or_default()
                    .push(name.as_str());
            }
        }
        let mut stack: Vec<&str> = [
            Some(&self.query),
            self.mutation.as_ref(),
            self.subscription.as_ref(),
        ]
        .into_iter()
        .flatten()
        .map(String::as_str)
        .chain(BUILT_IN_SCALARS)
        .chain(self.directive_inputs.iter().map(String::as_str))
        .collect();
        let mut seen: BTreeSet<&str> = BTreeSet::new();
        while let Some(name) = stack.pop() {
            if !seen.insert(name) {
                continue;
            }
            let Some(def) = self.types.get(name) else {
                continue;
            };
            for field in def.fields.values() {
                stack.push(&field.ty);
                stack.extend(field.args.values().map(|a| a.ty.as_str()));
            }
            stack.extend(def.input_fields.values().map(|i| i.ty.as_str()));
            stack.extend(def.implements.iter().map(String::as_str));
            stack.extend(def.members.iter().map(String::as_str));
            stack.extend(implementations.get(name).into_iter().flatten().copied());
        }
        let seen: BTreeSet<String> = seen.into_iter().map(str::to_owned).collect();
        self.types.retain(|name, _| seen.contains(name));
    }

    fn has_type(&self, ty: &str) -> bool {
        ty.starts_with("__") || self.types.contains_key(ty)
    }

    fn def(&self, ty: &str) -> Option<&TypeDef> {
        self.types.get(ty)
    }

    fn has_field(&self, ty: &str, field: &str) -> bool {
        ty.starts_with("__") || self.def(ty).is_some_and(|d| d.fields.contains_key(field))
    }

    fn has_arg(&self, ty: &str, field: &str, arg: &str) -> bool {
        ty.starts_with("__")
            || self
                .def(ty)
                .and_then(|d| d.fields.get(field))
                .is_some_and(|f| f.args.contains_key(arg))
    }

    fn has_input_field(&self, ty: &str, field: &str) -> bool {
        ty.starts_with("__")
            || self
                .def(ty)
                .is_some_and(|d| d.input_fields.contains_key(field))
    }

    fn has_value(&self, ty: &str, value: &str) -> bool {
        ty.starts_with("__") || self.def(ty).is_some_and(|d| d.values.contains(value))
    }

    fn implements(&self, ty: &str, interface: &str) -> bool {
        self.def(ty)
            .is_some_and(|d| d.implements.contains(interface))
    }

    /// `possible` is among the possible types of the union or interface `abstract_type`.
    fn possible(&self, abstract_type: &str, possible: &str) -> bool {
        match self.def(abstract_type).map(|d| d.kind) {
            Some(Kind::Union) => self
                .def(abstract_type)
                .is_some_and(|d| d.members.contains(possible)),
            Some(Kind::Interface) => self.implements(possible, abstract_type),
            _ => false,
        }
    }
}

mod plan;
#[cfg(test)]
use plan::MAX_FRAGMENT_NESTING;
pub use plan::Plan;

#[cfg(test)]
mod tests;
