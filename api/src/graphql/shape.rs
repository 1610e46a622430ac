//! The executed response put in the shape the GraphQL specification gives it (§6.3 "Executing
//! Selection Sets", §6.4.4 "Handling Field Errors").
//!
//! Why: async-graphql 7.2 resolves a selection's fields through `FuturesUnordered` and inserts
//! each into the response as it completes, and a field whose resolver (or the field guard) errs
//! is left out (`resolver_utils/container.rs`). So keys came in completion order — a query
//! asking for `tradeRecords` then `me` could get `me` first — and a refused field was missing
//! instead of `null`, while a refused non-null field left its parent claiming a value the
//! schema promises whole. Clients generated from the schema read a missing key as a broken
//! response. `complete` walks the operation that ran over the response:
//!
//! * each object's keys in the order `CollectFields` gives them (fragments merged in place);
//! * a field missing from the object is `null` — it can only be missing because it erred, and
//!   its error is already in `errors` with its path;
//! * a null (or missing) value at a non-null type makes its parent null, up to the nearest
//!   nullable field or list item's parent, and to `data` itself at the top;
//! * an object async-graphql gave as `null` because every field of it erred (it returns null
//!   for an object with no resolved field) is an object again, of nulls, when `errors` has paths
//!   inside it.
//!
//! It never adds data: a value is only moved, kept, or replaced by null. Where it cannot tell
//! what ran — a directive other than `@skip`/`@include`, an interface value whose object type
//! the response does not settle, one response key naming two fields (refused before execution
//! by `Pending::conflict`, which the same collection finds), a field the served SDL does not
//! have (introspection's `__schema`) — it leaves that value as async-graphql built it.
//!
//! The same walk counts the records the completed response delivers, by the rule of
//! `records::counts` (each non-null value of a field whose type is a record type, each item of
//! a list of them, each selection of it), which the quota and the audit record take
//! (`delivery`). A record the executor resolved inside a value nulled here is not delivered and
//! not counted. Where a value is left as built, its records are not known here: the count is
//! `None`, and the per-field hook's count of what resolved stands in (more than delivered,
//! never less).

use std::collections::{HashMap, HashSet};
use std::rc::Rc;
use std::sync::Arc;

use async_graphql::parser::types::{
    BaseType, ExecutableDocument, Field, OperationDefinition, OperationType, Selection,
    SelectionSet, Type,
};
use async_graphql::{Name, PathSegment, Positioned, ServerError, Value, Variables};

use super::planned::{self, Types};
use super::{ids, limits};

/// A request's document and variables, kept to shape its response after execution.
pub struct Pending {
    pub(super) types: Arc<Types>,
    pub(super) doc: ExecutableDocument,
    pub(super) operation_name: Option<String>,
    pub(super) variables: Variables,
}

impl Pending {
    /// The first response key two fields may not share, as the validation error the
    /// specification gives it (`OverlappingFieldsCanBeMerged`, §5.3.2). async-graphql checks
    /// this only between fields under the same type condition, so
    /// `{ a: me { role } ... on Query { a: tradeRecords { nodes { id } } } }` passed it, ran
    /// both fields and merged their values into one object under `a`; refused here before
    /// execution. Only fields that apply to one object type must be the same field (two
    /// fragments on different types may use one key for different fields); those must still
    /// give values of one shape (`same_shape`).
    pub fn conflict(&self) -> Option<ServerError> {
        let operation = planned::operation(&self.doc, self.operation_name.as_deref())?;
        let root = root(operation)?;
        let mut walk = Walk::new(&self.types, &self.doc, &self.variables, &[]);
        walk.overlaps(root, &[&operation.selection_set.node], 0);
        walk.conflict
    }

    /// Shapes `response` and returns the records it delivers (`None`: not known, see
    /// `complete`).
    pub fn apply(&self, response: &mut async_graphql::Response) -> Option<u64> {
        complete(
            &self.types,
            &self.doc,
            self.operation_name.as_deref(),
            &self.variables,
            &mut response.data,
            &response.errors,
        )
    }
}

/// Puts `data` in the specification's shape for the operation that ran (see the module
/// comment); `errors` are the response's, read for where values were present. Returns the
/// records the completed `data` delivers, `None` if part of it was left as built.
pub fn complete(
    types: &Types,
    doc: &ExecutableDocument,
    operation_name: Option<&str>,
    variables: &Variables,
    data: &mut Value,
    errors: &[ServerError],
) -> Option<u64> {
    // Nothing ran (a request error): nothing to shape, nothing delivered.
    if !matches!(data, Value::Object(_)) {
        return Some(0);
    }
    let operation = planned::operation(doc, operation_name)?;
    let root = root(operation)?;
    let mut walk = Walk::new(types, doc, variables, errors);
    let root_type = Type {
        base: BaseType::Named(Name::new(root)),
        nullable: true,
    };
    let sets = [&operation.selection_set.node];
    walk.complete(&root_type, &sets, false, data);
    walk.understood.then_some(walk.records)
}

/// The root type the operation runs on; none for a subscription (the schema has none).
fn root(operation: &OperationDefinition) -> Option<&'static str> {
    match operation.ty {
        OperationType::Query => Some("Query"),
        OperationType::Mutation => Some("Mutation"),
        OperationType::Subscription => None,
    }
}

/// One response key of an object and the selections that make its value (§6.3.2).
struct Group<'a> {
    key: &'a Name,
    name: &'a str,
    /// The first field selected under `key`: its arguments and place, for `conflict`.
    first: &'a Positioned<Field>,
    sets: Vec<&'a SelectionSet>,
    /// The field's type on the object type collected for (`None`: not in the served SDL, as
    /// introspection's fields), and whether a value of it is a record: looked up once per
    /// collection, not once per record of a page.
    ty: Option<&'a Type>,
    counts: bool,
}

type Collected<'a> = Rc<Vec<Group<'a>>>;

struct Walk<'a> {
    types: &'a Types,
    doc: &'a ExecutableDocument,
    variables: &'a Variables,
    /// Paths (`tradeRecords/edges/0/node`) of values with an error inside them.
    inside_errors: HashSet<String>,
    /// Whether `path` is kept: only when some error has a path (it costs a string per value).
    track: bool,
    path: String,
    /// The fields of an object type under a list of selections, computed once per list: the
    /// 50 nodes of a page share them.
    collected: HashMap<(&'a str, Vec<usize>), Option<Collected<'a>>>,
    /// Records delivered by the values completed so far.
    records: u64,
    /// Two fields under one response key that may not share it (see `overlap`).
    conflict: Option<ServerError>,
    /// Whether every value was completed: none left as built.
    understood: bool,
}

impl<'a> Walk<'a> {
    fn new(
        types: &'a Types,
        doc: &'a ExecutableDocument,
        variables: &'a Variables,
        errors: &[ServerError],
    ) -> Self {
        let mut inside_errors = HashSet::new();
        for error in errors {
            let mut path = String::new();
            // Every proper prefix: the values that held the erring field.
            for segment in error.path.iter().take(error.path.len().saturating_sub(1)) {
                match segment {
                    PathSegment::Field(name) => push(&mut path, name),
                    PathSegment::Index(index) => push(&mut path, &index.to_string()),
                }
                inside_errors.insert(path.clone());
            }
        }
        Walk {
            types,
            doc,
            variables,
            track: !inside_errors.is_empty(),
            inside_errors,
            path: String::new(),
            collected: HashMap::new(),
            records: 0,
            understood: true,
            conflict: None,
        }
    }

    /// Collects every selection set of the operation for each object type it may apply to,
    /// so that `collect` records the first overlap in `conflict`.
    fn overlaps(&mut self, name: &'a str, sets: &[&'a SelectionSet], depth: usize) {
        let types = self.types;
        if depth > limits::MAX_NESTING || self.conflict.is_some() {
            return;
        }
        for object_type in types.possible(name) {
            let Some(groups) = self.collect(object_type, sets) else {
                return;
            };
            for group in groups.iter() {
                if let Some(ty) = group.ty {
                    let named = crate::introspection::named(ty);
                    if !types.possible(named).is_empty() {
                        self.overlaps(named, &group.sets, depth + 1);
                    }
                }
            }
        }
        // Keys of fields on different object types, which never meet on one value.
        if types.possible(name).len() > 1 {
            self.same_shapes(name, sets, depth);
        }
    }

    /// Completes `value` of type `ty` selected by `sets`; a non-null value (each item, in a list)
    /// is a record if `counts`. `false`: it had to be null and `ty` is non-null, so the null
    /// propagates to the caller.
    fn complete(
        &mut self,
        ty: &'a Type,
        sets: &[&'a SelectionSet],
        counts: bool,
        value: &mut Value,
    ) -> bool {
        let before = self.records;
        let whole = match (&ty.base, &mut *value) {
            (BaseType::List(item), Value::List(items)) => {
                let mut whole = true;
                for (index, item_value) in items.iter_mut().enumerate() {
                    let mark = self.enter_index(index);
                    whole = self.complete(item, sets, counts, item_value);
                    self.path.truncate(mark);
                    if !whole {
                        break;
                    }
                }
                whole
            }
            (BaseType::Named(name), Value::Object(_)) => {
                self.records += u64::from(counts);
                self.object(name, sets, value)
            }
            (BaseType::Named(name), Value::Null)
                if self.track && self.inside_errors.contains(&self.path) =>
            {
                // An object whose every field erred, which async-graphql gives as null. Of an
                // interface type, nothing is left to tell which object type it was.
                if !self.types.is_object(name) {
                    self.understood = false;
                    return true;
                }
                *value = Value::Object(Default::default());
                self.records += u64::from(counts);
                self.object(name, sets, value)
            }
            (BaseType::Named(name), Value::Null)
                if self.types.is_object(name)
                    && self
                        .collect(name, sets)
                        .is_some_and(|groups| groups.is_empty()) =>
            {
                // Every field of it left out by `@skip`/`@include`: an empty object, which
                // async-graphql gives as null too.
                *value = Value::Object(Default::default());
                self.records += u64::from(counts);
                true
            }
            (_, Value::Null) => false,
            (BaseType::Named(name), _) if self.types.possible(name).is_empty() => true,
            // A list or object where the schema says otherwise: as built, and not understood.
            _ => {
                self.understood = false;
                true
            }
        };
        if whole {
            return true;
        }
        // Nulled: what it held is not delivered.
        self.records = before;
        *value = Value::Null;
        ty.nullable
    }

    /// Completes an object value of (abstract or object) type `name`; `false` if a non-null
    /// field of it is null.
    fn object(&mut self, name: &'a str, sets: &[&'a SelectionSet], value: &mut Value) -> bool {
        let Value::Object(map) = value else {
            return true;
        };
        let Some(groups) = self.settle(name, sets, map) else {
            self.understood = false;
            return true;
        };
        if !in_order(map, &groups) {
            // `settle` saw that every key present is a group's: nothing is dropped.
            let mut old = std::mem::take(map);
            for group in groups.iter() {
                let field = old.swap_remove(group.key).unwrap_or(Value::Null);
                map.insert(group.key.clone(), field);
            }
        }
        // The first entries are now the groups', in order.
        for (field, group) in map.values_mut().zip(groups.iter()) {
            if group.name == "__typename" {
                // Cannot err, so never missing; and an interface value's type may be settled
                // only up to types that select alike, so the walk never writes it.
                continue;
            }
            let Some(ty) = group.ty else {
                // Introspection's `__schema` and `__type` are not in the served SDL, and hold
                // no records; anything else unknown is not read.
                if !group.name.starts_with("__") {
                    self.understood = false;
                }
                continue;
            };
            let mark = self.enter(group.key);
            let whole = self.complete(ty, &group.sets, group.counts, field);
            self.path.truncate(mark);
            if !whole {
                return false;
            }
        }
        true
    }

    /// The fields of an object value of type `name`, as collected for its object type: the one
    /// possible type whose fields hold every key present, or any of several that select the
    /// same fields, or the one its global `id` names when that is selected. `None` if the response
    /// does not settle it — also when a key present is no field the walk collected, which
    /// means it does not read the document as async-graphql ran it — or anything in the
    /// selection is unknown.
    fn settle(
        &mut self,
        name: &'a str,
        sets: &[&'a SelectionSet],
        map: &async_graphql::indexmap::IndexMap<Name, Value>,
    ) -> Option<Collected<'a>> {
        let types = self.types;
        if let [only] = types.possible(name) {
            // An object type: its keys in selection order are the common case, and prove
            // every key is a group's without comparing each with each.
            let groups = self.collect(only, sets)?;
            let fits = in_order(map, &groups)
                || map
                    .keys()
                    .all(|key| groups.iter().any(|group| group.key == key));
            return fits.then_some(groups);
        }
        let mut fits: Vec<(&'a str, Collected<'a>)> = Vec::new();
        for candidate in types.possible(name) {
            let groups = self.collect(candidate, sets)?;
            if map
                .keys()
                .all(|key| groups.iter().any(|group| group.key == key))
            {
                fits.push((candidate.as_str(), groups));
            }
        }
        let (_, groups) = fits.first()?;
        // Alike down to each field's type and whether it counts.
        let alike = fits.iter().all(|(_, other)| {
            other.len() == groups.len()
                && groups.iter().zip(other.iter()).all(|(a, b)| {
                    a.key == b.key && a.name == b.name && a.ty == b.ty && a.counts == b.counts
                })
        });
        if alike {
            return fits.into_iter().next().map(|(_, groups)| groups);
        }
        // A node's global id names its type (`ids::encode`; the server wrote it).
        let named = |(candidate, groups): &(&'a str, Collected<'a>)| {
            groups.iter().any(|group| {
                group.name == "id"
                    && matches!(map.get(group.key), Some(Value::String(id))
                        if ids::decode(id).is_ok_and(|(kind, _)| kind.type_name() == *candidate))
            })
        };
        fits.into_iter().find(named).map(|(_, groups)| groups)
    }

    /// `CollectFields(objectType, selectionSet)` (§6.3.2) over each of `sets` in turn.
    fn collect(
        &mut self,
        object_type: &'a str,
        sets: &[&'a SelectionSet],
    ) -> Option<Collected<'a>> {
        let key = (
            object_type,
            sets.iter()
                .map(|set| std::ptr::from_ref(*set) as usize)
                .collect(),
        );
        if let Some(known) = self.collected.get(&key) {
            return known.clone();
        }
        let mut groups = Vec::new();
        let mut visited = HashSet::new();
        let mut collected = Some(());
        for set in sets {
            collected = collected
                .and_then(|()| self.collect_set(object_type, set, 0, &mut visited, &mut groups));
        }
        let groups = collected.map(|()| Rc::new(groups));
        self.collected.insert(key, groups.clone());
        groups
    }

    fn collect_set(
        &mut self,
        object_type: &'a str,
        set: &'a SelectionSet,
        depth: usize,
        visited: &mut HashSet<&'a str>,
        groups: &mut Vec<Group<'a>>,
    ) -> Option<()> {
        if depth > limits::MAX_NESTING {
            return None;
        }
        for selection in &set.items {
            if planned::skipped(selection.node.directives(), self.variables)? {
                continue;
            }
            match &selection.node {
                Selection::Field(positioned) => {
                    let field = &positioned.node;
                    let key = &field.response_key().node;
                    let sub = &field.selection_set.node;
                    match groups.iter_mut().find(|group| group.key == key) {
                        Some(group) => {
                            if let Some(conflict) = overlap(group, positioned) {
                                self.conflict.get_or_insert(conflict);
                                return None;
                            }
                            group.sets.push(sub);
                        }
                        None => {
                            let name = field.name.node.as_str();
                            let ty = self.types.field(object_type, name);
                            groups.push(Group {
                                key,
                                name,
                                first: positioned,
                                sets: vec![sub],
                                ty,
                                counts: ty.is_some_and(|ty| planned::counts(object_type, name, ty)),
                            });
                        }
                    }
                }
                Selection::FragmentSpread(spread) => {
                    let name = spread.node.fragment_name.node.as_str();
                    if !visited.insert(name) {
                        continue;
                    }
                    let fragment = &self.doc.fragments.get(name)?.node;
                    if !fragment.directives.is_empty() {
                        return None;
                    }
                    if self.applies(object_type, &fragment.type_condition.node.on.node) {
                        let set = &fragment.selection_set.node;
                        self.collect_set(object_type, set, depth + 1, visited, groups)?;
                    }
                }
                Selection::InlineFragment(inline) => {
                    let inline = &inline.node;
                    let applies = inline
                        .type_condition
                        .as_ref()
                        .is_none_or(|c| self.applies(object_type, &c.node.on.node));
                    if applies {
                        let set = &inline.selection_set.node;
                        self.collect_set(object_type, set, depth + 1, visited, groups)?;
                    }
                }
            }
        }
        Some(())
    }

    /// `DoesFragmentTypeApply` (§6.3.2).
    fn applies(&self, object_type: &str, condition: &str) -> bool {
        self.types
            .possible(condition)
            .iter()
            .any(|possible| possible == object_type)
    }

    /// Appends `key` to the tracked path; returns the length to truncate back to.
    fn enter(&mut self, key: &str) -> usize {
        let mark = self.path.len();
        if self.track {
            push(&mut self.path, key);
        }
        mark
    }

    fn enter_index(&mut self, index: usize) -> usize {
        let mark = self.path.len();
        if self.track {
            push(&mut self.path, &index.to_string());
        }
        mark
    }
}

/// Whether `map` holds exactly the groups' keys, in their order.
fn in_order(map: &async_graphql::indexmap::IndexMap<Name, Value>, groups: &[Group<'_>]) -> bool {
    map.len() == groups.len()
        && map
            .keys()
            .zip(groups.iter())
            .all(|(key, group)| key == group.key)
}

/// Response keys are GraphQL names (`[_A-Za-z][_0-9A-Za-z]*`) and indices digits, so `/` joins
/// them without ambiguity.
fn push(path: &mut String, key: &str) {
    if !path.is_empty() {
        path.push('/');
    }
    path.push_str(key);
}

/// Whether `field` may share `group`'s key: the same field with the same arguments (in any
/// order). Otherwise the validation error async-graphql words for the same case.
fn overlap(group: &Group<'_>, field: &Positioned<Field>) -> Option<ServerError> {
    let first = &group.first.node;
    let name = field.node.name.node.as_str();
    let message = if group.name != name {
        format!(
            "Fields \"{}\" conflict because \"{}\" and \"{name}\" are different fields. Use \
             different aliases on the fields to fetch both if this was intentional.",
            group.key, group.name
        )
    } else {
        let same_arguments = first.arguments.len() == field.node.arguments.len()
            && first.arguments.iter().all(|(arg, value)| {
                field
                    .node
                    .get_argument(&arg.node)
                    .is_some_and(|other| other == value)
            });
        if same_arguments {
            return None;
        }
        format!(
            "Fields \"{}\" conflict because they have differing arguments. Use different \
             aliases on the fields to fetch both if this was intentional.",
            group.key
        )
    };
    let mut error = ServerError::new(message, Some(group.first.pos));
    error.locations.push(field.pos);
    Some(error)
}

mod same_shape;
#[cfg(test)]
mod tests;
