//! Authorization as data: `policies/roles.toml` (role → categories, row scope) and
//! `policies/fields.toml` (GraphQL field → category), loaded and validated at start-up.
//!
//! Decisions are made once per request: `Policy::permissions` turns an account into a
//! `PermissionSet`, and every guard, filter check and row scope reads only that set. No code
//! outside this module mentions a role name when deciding anything.
//!
//! Why not Cedar: the rules today are role → category grants with deny-wins, plus row scopes
//! that must become SQL predicates (DESIGN §2: "compiled into the SQL query"). Cedar decides
//! one request about one resource; turning its policies into a SQL `WHERE` needs its
//! experimental partial evaluation. Two small TOML tables evaluated by ~100 lines of checked
//! code are easier to review and cannot drift from the SQL they produce. If rules grow
//! attribute conditions (time of day, case assignment), Cedar is the place to move them.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use rustc_hash::FxHashMap;
use serde::Deserialize;

use crate::agreements::Grant;
use crate::config::Instance;
use crate::quota::Quota;

/// Data categories. `Authenticated` is any active account. `PreAuth` is the one exception to
/// "a principal first": fields a partner may resolve before signing in (`login` over mTLS);
/// no role holds it, and a request with a principal never resolves it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Category {
    Trade,
    TradePii,
    Financial,
    LawEnforcement,
    Sdn,
    Audit,
    Admin,
    Authenticated,
    PreAuth,
}

impl Category {
    pub fn as_str(self) -> &'static str {
        match self {
            Category::Trade => "TRADE",
            Category::TradePii => "TRADE_PII",
            Category::Financial => "FINANCIAL",
            Category::LawEnforcement => "LAW_ENFORCEMENT",
            Category::Sdn => "SDN",
            Category::Audit => "AUDIT",
            Category::Admin => "ADMIN",
            Category::Authenticated => "AUTHENTICATED",
            Category::PreAuth => "PRE_AUTH",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RowScope {
    All,
    OwnNation,
    None,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RoleRule {
    #[serde(default)]
    description: String,
    #[serde(default)]
    allow: Vec<Category>,
    #[serde(default)]
    deny: Vec<Category>,
    rows: RowScope,
    /// Records the role may pull out per window; absent means unlimited.
    #[serde(default)]
    quota: Option<Quota>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RolesFile {
    roles: BTreeMap<String, RoleRule>,
}

#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    #[error("cannot read policy file {path}: {reason}")]
    Read { path: String, reason: String },
    #[error("policy file {file} is invalid: {reason}")]
    Invalid { file: String, reason: String },
}

/// What one account may do, decided once per request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PermissionSet {
    pub role: String,
    pub categories: BTreeSet<Category>,
    pub rows: RowScope,
    /// The nation rows are scoped to, for `RowScope::OwnNation`.
    pub nation: Option<String>,
    /// The role's download allowance; `None` is unlimited.
    pub quota: Option<Quota>,
    /// Sharing agreements widening a nation-scoped role's rows (filled in per request by
    /// authentication, from the database).
    pub grants: Vec<Grant>,
    /// Whether a nation-scoped role also reads the US rows whose partner is its nation. Only
    /// the foreign instance holds them anonymized (`dartts export-foreign`); on the domestic
    /// instance they carry real US importers, whom DESIGN §2 never shows a partner.
    pub us_partner_rows: bool,
}

impl PermissionSet {
    pub fn allows(&self, category: Category) -> bool {
        category == Category::Authenticated || self.categories.contains(&category)
    }
}

#[derive(Debug)]
pub struct Policy {
    /// Categories this deployment never serves, whatever a role allows (the foreign instance
    /// holds no financial, law-enforcement or SDN data and must not pretend to).
    instance_denies: BTreeSet<Category>,
    /// Which deployment this is: the foreign instance gives nation-scoped roles the US rows
    /// of their nation (`PermissionSet::us_partner_rows`) and has no users of the domestic
    /// agencies (`serves`).
    instance: Instance,
    roles: BTreeMap<String, RoleRule>,
    /// type → field → category, with `"*"` as the type's default.
    fields: BTreeMap<String, BTreeMap<String, Category>>,
    /// type → field → every category reading the field takes (its own first, then those of the
    /// fields it compares, `DERIVED`), for every field of the schema, worked out at load from
    /// `fields` and `DERIVED`: the field guard asks for each resolved field (~550 times for a
    /// page of 50 records), and walking both tables each time was 7 % of such a request.
    needs: FxHashMap<String, FxHashMap<String, Vec<Category>>>,
    /// Non-null fields this policy refuses to some readers of their type (see
    /// `nulls_parents`), as `Type.field needs CATEGORY`.
    nulls_parents: Vec<String>,
}

/// The policy shipped with this build; `DARTTS_POLICY_DIR` replaces it in deployments.
const BUILT_IN_ROLES: &str = include_str!("../../../policies/roles.toml");
const BUILT_IN_FIELDS: &str = include_str!("../../../policies/fields.toml");

/// `(type, field)` as `fields.toml` names them.
type FieldRef = (&'static str, &'static str);

/// Fields computed by comparing other fields (for equality, or to order rows). Whoever reads
/// one learns how those fields compare, so reading it takes its own category *and* those of
/// every field it compares;
/// otherwise `linkedFinancialTransactions` (or the `linkedFinancialActivity` filter) would
/// tell a role that cannot see a report's subject TIN that it equals the importer's id. A
/// field has one category in `fields.toml`; this is the one rule that needs more than one.
const DERIVED: &[(FieldRef, &[FieldRef])] = &[
    // Screens the record's party names: a hit would tell a role those names.
    (
        ("TradeRecord", "partyHits"),
        &[
            ("TradeRecord", "importerName"),
            ("TradeRecord", "exporterName"),
            ("TradeRecord", "manufacturerName"),
        ],
    ),
    (
        ("TradeTotal", "partyHits"),
        &[
            ("TradeRecord", "importerName"),
            ("TradeRecord", "manufacturerName"),
        ],
    ),
    // The entity view screens the importer's names and matches reports on the subject.
    (
        ("EntityView", "screeningHits"),
        &[("TradeRecord", "importerName")],
    ),
    (
        ("EntityView", "financialTransactions"),
        &[
            ("FinancialTransaction", "subjectTin"),
            ("FinancialTransaction", "subjectName"),
        ],
    ),
    (
        ("TradeRecord", "linkedFinancialTransactions"),
        &[
            ("TradeRecord", "importerId"),
            ("TradeRecord", "importerName"),
            ("FinancialTransaction", "subjectTin"),
            ("FinancialTransaction", "subjectName"),
        ],
    ),
    // A connection with a fixed order ranks its rows by that field: the page order alone
    // would tell a role the relative values of a field it cannot read.
    (
        ("Query", "financialTransactions"),
        &[("FinancialTransaction", "transactionDate")],
    ),
    (
        ("Query", "subjectRecords"),
        &[("SubjectRecord", "recordId")],
    ),
    // Analysis sums disclose the fields they add up; a pairing or matching discloses the
    // fields it pairs on and ranks by.
    (
        ("TradeTotal", "valueUsd"),
        &[("TradeRecord", "declaredValueUsd")],
    ),
    (
        ("TradeTotal", "quantity"),
        &[("TradeRecord", "quantity"), ("TradeRecord", "quantityUnit")],
    ),
    (
        ("TradeTotal", "quantityUnit"),
        &[("TradeRecord", "quantityUnit")],
    ),
    (
        ("TradeTotal", "netWeightKg"),
        &[("TradeRecord", "netWeightKg")],
    ),
    (
        ("Query", "mirrorDiscrepancies"),
        &[
            ("TradeRecord", "direction"),
            ("TradeRecord", "reportingCountry"),
            ("TradeRecord", "partnerCountry"),
            ("TradeRecord", "hsCode"),
            ("TradeRecord", "declarationDate"),
            ("TradeRecord", "declaredValueUsd"),
            ("TradeRecord", "quantity"),
            ("TradeRecord", "quantityUnit"),
            ("TradeRecord", "netWeightKg"),
        ],
    ),
    (
        ("Query", "tradeFinanceMismatches"),
        &[
            ("TradeRecord", "importerId"),
            ("TradeRecord", "importerName"),
            ("TradeRecord", "direction"),
            ("TradeRecord", "declarationDate"),
            ("TradeRecord", "declaredValueUsd"),
            ("FinancialTransaction", "subjectTin"),
            ("FinancialTransaction", "subjectName"),
            ("FinancialTransaction", "amountUsd"),
            ("FinancialTransaction", "cashDirection"),
            ("FinancialTransaction", "transactionDate"),
            ("FinancialTransaction", "reportId"),
        ],
    ),
];

impl Policy {
    /// Loads from `dir` (or the built-in copy) and validates against `sdl`.
    pub fn load(dir: Option<&Path>, sdl: &str, known_roles: &[&str]) -> Result<Self, PolicyError> {
        let (roles_text, fields_text, label) = match dir {
            Some(dir) => (
                read(&dir.join("roles.toml"))?,
                read(&dir.join("fields.toml"))?,
                dir.display().to_string(),
            ),
            None => (
                BUILT_IN_ROLES.to_owned(),
                BUILT_IN_FIELDS.to_owned(),
                "policies".to_owned(),
            ),
        };
        let roles_file = format!("{label}/roles.toml");
        let fields_file = format!("{label}/fields.toml");
        let roles: RolesFile = toml::from_str(&roles_text).map_err(|e| PolicyError::Invalid {
            file: roles_file.clone(),
            reason: e.to_string(),
        })?;
        let fields: BTreeMap<String, BTreeMap<String, Category>> = toml::from_str(&fields_text)
            .map_err(|e| PolicyError::Invalid {
                file: fields_file.clone(),
                reason: e.to_string(),
            })?;
        let mut policy = Policy {
            instance_denies: BTreeSet::new(),
            instance: Instance::Domestic,
            roles: roles.roles,
            fields,
            needs: FxHashMap::default(),
            nulls_parents: Vec::new(),
        };
        policy
            .check_roles(known_roles)
            .map_err(|reason| PolicyError::Invalid {
                file: roles_file,
                reason,
            })?;
        let (schema_fields, non_null) =
            policy
                .check_fields(sdl)
                .map_err(|reason| PolicyError::Invalid {
                    file: fields_file,
                    reason,
                })?;
        for (type_name, fields) in schema_fields {
            let needs = fields
                .into_iter()
                .map(|field| {
                    let needs = policy.needed_categories(&type_name, &field);
                    (field, needs)
                })
                .collect();
            policy.needs.insert(type_name, needs);
        }
        policy.nulls_parents = policy.refused_non_null(&non_null);
        Ok(policy)
    }

    /// The policy as served by `instance`: deny wins, so an instance-level denial beats any
    /// role's allow.
    pub fn for_instance(mut self, instance: Instance) -> Self {
        self.instance = instance;
        self.instance_denies = match instance {
            Instance::Domestic => BTreeSet::new(),
            Instance::Foreign => {
                [Category::Financial, Category::LawEnforcement, Category::Sdn].into()
            }
        };
        self
    }

    fn check_roles(&self, known_roles: &[&str]) -> Result<(), String> {
        for name in self.roles.keys() {
            if !known_roles.contains(&name.as_str()) {
                return Err(format!(
                    "unknown role {name:?} (known: {})",
                    known_roles.join(", ")
                ));
            }
        }
        for role in known_roles {
            if !self.roles.contains_key(*role) {
                return Err(format!(
                    "role {role} has no rule; every role must be stated"
                ));
            }
        }
        for (name, rule) in &self.roles {
            for implicit in [Category::Authenticated, Category::PreAuth] {
                if rule.allow.contains(&implicit) || rule.deny.contains(&implicit) {
                    return Err(format!(
                        "role {name}: {} is implicit and cannot be granted or denied",
                        implicit.as_str()
                    ));
                }
            }
        }
        Ok(())
    }

    /// Every field of every object type in the schema has a category, and every entry in the
    /// file names a real type and field: a typo must not silently leave a field open. Returns
    /// the schema's fields by type, and its non-null fields (for `nulls_parents`).
    #[expect(
        clippy::type_complexity,
        reason = "the schema's fields by type, and its non-null fields, read in one pass"
    )]
    fn check_fields(
        &self,
        sdl: &str,
    ) -> Result<(BTreeMap<String, BTreeSet<String>>, Vec<(String, String)>), String> {
        use async_graphql::parser::types::{TypeKind, TypeSystemDefinition};
        let doc = async_graphql::parser::parse_schema(sdl).map_err(|e| format!("schema: {e}"))?;
        let mut schema_fields: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        let mut non_null: Vec<(String, String)> = Vec::new();
        for def in doc.definitions {
            if let TypeSystemDefinition::Type(t) = def {
                // Interface fields are resolved under the interface's name when selected on it
                // (`node(id:) { id }`), so interfaces need categories too.
                let fields = match &t.node.kind {
                    TypeKind::Object(object) => &object.fields,
                    TypeKind::Interface(interface) => &interface.fields,
                    _ => continue,
                };
                let type_name = t.node.name.node.to_string();
                let names = fields
                    .iter()
                    .map(|f| f.node.name.node.to_string())
                    .collect();
                non_null.extend(
                    fields
                        .iter()
                        .filter(|f| !f.node.ty.node.nullable)
                        .map(|f| (type_name.clone(), f.node.name.node.to_string())),
                );
                schema_fields.insert(type_name, names);
            }
        }
        for (type_name, fields) in &schema_fields {
            let rules = self.fields.get(type_name);
            for field in fields {
                let covered = rules.is_some_and(|r| r.contains_key(field) || r.contains_key("*"));
                if !covered {
                    return Err(format!(
                        "{type_name}.{field} has no category (deny by default refuses to guess)"
                    ));
                }
            }
        }
        for (type_name, rules) in &self.fields {
            let Some(fields) = schema_fields.get(type_name) else {
                return Err(format!("type {type_name} is not in the schema"));
            };
            for field in rules.keys().filter(|f| *f != "*") {
                if !fields.contains(field) {
                    return Err(format!("{type_name}.{field} is not in the schema"));
                }
            }
        }
        for (derived, compared) in DERIVED {
            for (ty, field) in std::iter::once(derived).chain(compared.iter()) {
                if !schema_fields.get(*ty).is_some_and(|f| f.contains(*field)) {
                    return Err(format!(
                        "derived-field rule names {ty}.{field}, not in the schema"
                    ));
                }
            }
        }
        Ok((schema_fields, non_null))
    }

    /// A refused field resolves to null with its error, and GraphQL turns a null at a non-null
    /// field into its parent's null (`graphql::shape`): one refused field takes a whole page
    /// with it. The shipped policy refuses no non-null field to a reader of its type (a unit
    /// test holds it to that); an edited one may — a partial view of a record type is a
    /// policy decision, not a schema change — and start-up says which fields then null their
    /// parents. Root fields are not listed: `Query` and `Mutation` have no category of their
    /// own, and each of their fields is a whole request a role makes or does not.
    pub fn nulls_parents(&self) -> &[String] {
        &self.nulls_parents
    }

    fn refused_non_null(&self, non_null: &[(String, String)]) -> Vec<String> {
        let mut out = Vec::new();
        for (type_name, field) in non_null {
            let Some(&default) = self.fields.get(type_name).and_then(|r| r.get("*")) else {
                continue;
            };
            let needs = self.needs_of(type_name, field).unwrap_or_default();
            if let Some(other) = needs
                .iter()
                .find(|c| **c != default && **c != Category::Authenticated)
            {
                out.push(format!(
                    "{type_name}.{field} needs {} (its type: {})",
                    other.as_str(),
                    default.as_str()
                ));
            }
        }
        out
    }

    /// The first category `perms` lacks to read `type_name.field`: the field's own or, for a
    /// field in `DERIVED`, one of a field it compares. `None`: readable. Every read check
    /// (field guard, filters and sort keys, introspection, CSV columns) goes through here.
    pub fn missing_category(
        &self,
        perms: &PermissionSet,
        type_name: &str,
        field: &str,
    ) -> Option<Category> {
        let missing = |needs: &[Category]| needs.iter().copied().find(|c| !perms.allows(*c));
        match self.needs_of(type_name, field) {
            Some(needs) => missing(needs),
            None => missing(&self.needed_categories(type_name, field)),
        }
    }

    /// The category a field carries. Unknown fields (only possible if validation was skipped)
    /// are treated as ADMIN, which no analytical role holds: deny by default.
    pub fn field_category(&self, type_name: &str, field: &str) -> Category {
        match self
            .needs_of(type_name, field)
            .and_then(|needs| needs.first())
        {
            Some(category) => *category,
            None => self.category_in_file(type_name, field),
        }
    }

    fn needs_of(&self, type_name: &str, field: &str) -> Option<&[Category]> {
        self.needs
            .get(type_name)
            .and_then(|fields| fields.get(field))
            .map(Vec::as_slice)
    }

    /// What `needs` holds for a field, from the tables themselves (also for a field outside
    /// the schema, which only a test can ask about).
    fn needed_categories(&self, type_name: &str, field: &str) -> Vec<Category> {
        let compared = DERIVED
            .iter()
            .filter(|((ty, name), _)| *ty == type_name && *name == field)
            .flat_map(|(_, compared)| compared.iter().copied());
        std::iter::once((type_name, field))
            .chain(compared)
            .map(|(ty, name)| self.category_in_file(ty, name))
            .collect()
    }

    fn category_in_file(&self, type_name: &str, field: &str) -> Category {
        self.fields
            .get(type_name)
            .and_then(|r| r.get(field).or_else(|| r.get("*")))
            .copied()
            .unwrap_or(Category::Admin)
    }

    /// Whether this deployment has users with `role`. The foreign instance holds partners'
    /// rows and the US rows pseudonymized for them; its users are partners' units and admins
    /// (DESIGN §1). A role that reads every row — the domestic agencies' — would read every
    /// partner's declarations there, so it has no place on it, whatever accounts say.
    pub fn serves(&self, role: &str) -> bool {
        self.roles
            .get(role)
            .is_some_and(|rule| self.instance == Instance::Domestic || rule.rows != RowScope::All)
    }

    /// The permission set of an account with `role` (and `nation`). Unknown roles, and roles
    /// the instance does not serve, get nothing.
    pub fn permissions(&self, role: &str, nation: Option<&str>) -> PermissionSet {
        let rule = self.roles.get(role).filter(|_| self.serves(role));
        let Some(rule) = rule else {
            return PermissionSet {
                role: role.to_owned(),
                categories: BTreeSet::new(),
                rows: RowScope::None,
                nation: None,
                quota: None,
                grants: Vec::new(),
                us_partner_rows: false,
            };
        };
        let denied: BTreeSet<Category> = rule
            .deny
            .iter()
            .chain(&self.instance_denies)
            .copied()
            .collect();
        let categories = rule
            .allow
            .iter()
            .copied()
            .filter(|c| !denied.contains(c))
            .collect();
        // A nation-scoped role without a nation sees no rows rather than all of them.
        let rows = match (rule.rows, nation) {
            (RowScope::OwnNation, None) => RowScope::None,
            (scope, _) => scope,
        };
        PermissionSet {
            role: role.to_owned(),
            categories,
            rows,
            nation: nation.map(str::to_owned),
            quota: rule.quota,
            grants: Vec::new(),
            us_partner_rows: self.instance == Instance::Foreign,
        }
    }

    /// The role's description from `roles.toml`, for operators.
    pub fn role_description(&self, role: &str) -> Option<&str> {
        self.roles
            .get(role)
            .map(|r| r.description.as_str())
            .filter(|d| !d.is_empty())
    }
}

fn read(path: &Path) -> Result<String, PolicyError> {
    std::fs::read_to_string(path).map_err(|e| PolicyError::Read {
        path: path.display().to_string(),
        reason: e.to_string(),
    })
}

#[cfg(test)]
mod tests;
